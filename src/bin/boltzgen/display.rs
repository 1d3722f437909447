//! What the command shows while it works, all of it on stderr (stdout is for results): progress
//! bars on a terminal, a line per tenth of each phase otherwise, and the log, which is notes of
//! the run and the library's warnings (chemfiles' among them) as `tracing` events, printed at
//! the level `-q` / `-v` chose. A log line is printed above a live progress bar, not through it.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use boltzgen::pipeline::Progress;
use indicatif::{ProgressBar, ProgressStyle};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, MakeWriter};
use tracing_subscriber::registry::LookupSpan;

/// The progress bar on screen, if any: log lines are written while it is hidden.
static BAR: OnceLock<Mutex<Option<ProgressBar>>> = OnceLock::new();

fn bar_slot() -> &'static Mutex<Option<ProgressBar>> {
    BAR.get_or_init(|| Mutex::new(None))
}

/// Set by the first Ctrl-C (SIGINT), when [`catch_interrupts`] was called.
static INTERRUPTED: OnceLock<Arc<AtomicBool>> = OnceLock::new();

/// Ctrl-C asks the run to stop at its next step or block (the sampler checkpoints first, so
/// that `--resume` continues it); a second Ctrl-C quits at once with exit code 130. Not under
/// `mpirun`, where every rank gets the signal and a rank stopping alone would leave the others
/// waiting for it.
pub fn catch_interrupts() {
    let flag = Arc::new(AtomicBool::new(false));
    // The order matters: the conditional shutdown sees the flag before the second handler
    // sets it, so only a second signal exits.
    let registered = signal_hook::flag::register_conditional_shutdown(
        signal_hook::consts::SIGINT,
        130,
        Arc::clone(&flag),
    )
    .and_then(|_| signal_hook::flag::register(signal_hook::consts::SIGINT, Arc::clone(&flag)));
    if registered.is_ok() {
        let _ = INTERRUPTED.set(flag);
    }
}

/// The level of `-q` (warnings only), the default (notes), `-v` (debug) and `-vv` (trace).
pub fn level(quiet: bool, verbose: u8) -> Level {
    match (quiet, verbose) {
        (true, _) => Level::WARN,
        (false, 0) => Level::INFO,
        (false, 1) => Level::DEBUG,
        _ => Level::TRACE,
    }
}

/// Sends every `tracing` event at `level` or above to stderr, as plain lines.
pub fn init_logging(level: Level) {
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(StderrAboveBar)
        .event_format(PlainLines)
        .finish();
    // Only fails when a subscriber is already set, which leaves that one in force.
    let _ = tracing::subscriber::set_global_default(subscriber);
}

/// `note`, `warning: note`, `debug: note`; other crates' events name their crate.
struct PlainLines;

impl<S, N> FormatEvent<S, N> for PlainLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let meta = event.metadata();
        match *meta.level() {
            Level::INFO => {}
            Level::WARN => write!(writer, "warning: ")?,
            Level::ERROR => write!(writer, "error: ")?,
            Level::DEBUG => write!(writer, "debug: ")?,
            Level::TRACE => write!(writer, "trace: ")?,
        }
        let target = meta.target();
        if target != "boltzgen" && !target.starts_with("boltzgen::") {
            write!(writer, "[{target}] ")?;
        }
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

/// Hands out a buffer per event, written to stderr in one piece when the event is done.
struct StderrAboveBar;

impl<'a> MakeWriter<'a> for StderrAboveBar {
    type Writer = EventLine;
    fn make_writer(&'a self) -> EventLine {
        EventLine(Vec::new())
    }
}

/// One event's text, written out on drop (above the progress bar when one is showing).
struct EventLine(Vec<u8>);

impl Write for EventLine {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for EventLine {
    fn drop(&mut self) {
        let bytes = std::mem::take(&mut self.0);
        let emit = || {
            let _ = std::io::stderr().lock().write_all(&bytes);
        };
        let bar = bar_slot().lock().ok().and_then(|b| b.clone());
        match bar {
            Some(bar) => bar.suspend(emit),
            None => emit(),
        }
    }
}

/// Progress of the phases: a bar on a terminal, a line per tenth otherwise, none with -q.
pub struct Display {
    terminal: bool,
    told_to_stop: bool,
    quiet: bool,
    phase: String,
    total: u64,
    last_logged: u64,
}

impl Display {
    /// Progress for a run; `quiet` hides it (warnings still show).
    pub fn new(quiet: bool) -> Self {
        Self {
            terminal: std::io::stderr().is_terminal(),
            told_to_stop: false,
            quiet,
            phase: String::new(),
            total: 0,
            last_logged: 0,
        }
    }

    fn bar(&self) -> Option<ProgressBar> {
        bar_slot().lock().ok().and_then(|b| b.clone())
    }

    fn set_bar(&self, bar: Option<ProgressBar>) {
        if let Ok(mut slot) = bar_slot().lock() {
            *slot = bar;
        }
    }
}

impl Progress for Display {
    fn start(&mut self, phase: &str, total: u64) {
        self.phase = phase.to_string();
        self.total = total;
        self.last_logged = 0;
        if self.quiet {
            return;
        }
        if self.terminal {
            let bar = ProgressBar::new(total);
            bar.set_style(
                ProgressStyle::with_template(
                    "{prefix:>10} [{bar:30}] {pos}/{len} {per_sec} ETA {eta} {msg}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            bar.set_prefix(phase.to_string());
            self.set_bar(Some(bar));
        } else {
            tracing::info!("{phase}: {total} steps");
        }
    }

    fn update(&mut self, done: u64, message: &str) {
        if let Some(bar) = self.bar() {
            bar.set_position(done);
            bar.set_message(message.to_string());
        } else if !self.quiet && self.total > 0 && done * 10 / self.total > self.last_logged {
            self.last_logged = done * 10 / self.total;
            tracing::info!("{}: {done}/{} {message}", self.phase, self.total);
        }
    }

    fn finish(&mut self) {
        if let Some(bar) = self.bar() {
            bar.finish();
        }
        self.set_bar(None);
    }

    fn note(&mut self, line: &str) {
        tracing::info!("{line}");
    }

    fn interrupted(&mut self) -> bool {
        let asked = INTERRUPTED.get().is_some_and(|f| f.load(Ordering::Relaxed));
        if asked && !self.told_to_stop {
            self.told_to_stop = true;
            tracing::warn!(
                "interrupted: stopping at the next step or checkpoint (Ctrl-C again quits at once)"
            );
        }
        asked
    }
}
