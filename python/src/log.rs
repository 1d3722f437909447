//! The library's log (`tracing` events: notes of a run, chemfiles' warnings) into Python's
//! `logging`, under the loggers `boltzgen` and `boltzgen.<crate>` (`boltzgen.chemfiles`).
//!
//! Events are queued as they happen, on whatever thread, and handed to `logging` by the call
//! that caused them before it returns, with the GIL held. Calling into Python from the event
//! itself could deadlock: a rayon worker would wait for the GIL that the caller's thread holds
//! while it waits for the worker.

use std::sync::Mutex;

use pyo3::prelude::*;
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

/// Events not yet handed to Python; a burst beyond this many is dropped and counted.
const QUEUE_LIMIT: usize = 10_000;

struct Queued {
    level: Level,
    target: String,
    message: String,
}

static QUEUE: Mutex<(Vec<Queued>, usize)> = Mutex::new((Vec::new(), 0));

/// Collects the message of an event.
struct Message<'a>(&'a mut String);

impl tracing::field::Visit for Message<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        use std::fmt::Write;
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?}");
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }
}

/// Queues every event for [`flush`].
struct QueueLayer;

impl<S: Subscriber> Layer<S> for QueueLayer {
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let mut message = String::new();
        event.record(&mut Message(&mut message));
        if let Ok(mut queue) = QUEUE.lock() {
            if queue.0.len() < QUEUE_LIMIT {
                let meta = event.metadata();
                queue.0.push(Queued {
                    level: *meta.level(),
                    target: meta.target().to_owned(),
                    message,
                });
            } else {
                queue.1 += 1;
            }
        }
    }
}

/// Installs the queue as the process's `tracing` subscriber (once; a subscriber that the host
/// process installed first stays in force).
pub fn install() {
    let _ =
        tracing::subscriber::set_global_default(tracing_subscriber::registry().with(QueueLayer));
}

/// `logging`'s number for a level.
fn python_level(level: Level) -> i32 {
    match level {
        Level::ERROR => 40,
        Level::WARN => 30,
        Level::INFO => 20,
        Level::DEBUG => 10,
        Level::TRACE => 5,
    }
}

/// Hands the queued events to Python's `logging`.
pub fn flush(py: Python<'_>) {
    let (events, dropped) = match QUEUE.lock() {
        Ok(mut queue) => (std::mem::take(&mut queue.0), std::mem::take(&mut queue.1)),
        Err(_) => return,
    };
    if events.is_empty() && dropped == 0 {
        return;
    }
    let _ = (|| -> PyResult<()> {
        let logging = py.import("logging")?;
        for e in events {
            let crate_name = e.target.split("::").next().unwrap_or("boltzgen");
            let name = if crate_name == "boltzgen" {
                "boltzgen".to_owned()
            } else {
                format!("boltzgen.{crate_name}")
            };
            let logger = logging.call_method1("getLogger", (name,))?;
            logger.call_method1("log", (python_level(e.level), e.message))?;
        }
        if dropped > 0 {
            logging
                .call_method1("getLogger", ("boltzgen",))?
                .call_method1(
                    "warning",
                    (format!("{dropped} more log messages were dropped"),),
                )?;
        }
        Ok(())
    })();
}

/// `result`, after handing the log of the call that produced it to Python.
pub fn flushed<T>(py: Python<'_>, result: PyResult<T>) -> PyResult<T> {
    flush(py);
    result
}
