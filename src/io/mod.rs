//! Files: atomic writes (trajectories, reports and plots land here as the CLI grows).

mod atomic;

pub use atomic::write_atomically;
