//! Files: atomic writes and trajectories (chemfiles).

mod atomic;
pub mod trajectory;

pub use atomic::write_atomically;
pub use trajectory::{FrameRange, ReadSpec, TrajectoryWriter};
