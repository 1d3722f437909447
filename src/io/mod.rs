//! Files: atomic writes, streamed outputs and their checkpointed lengths, and trajectories
//! (chemfiles).

mod atomic;
mod sibling;
pub mod stream;
pub(crate) mod toml;
pub mod trajectory;

pub use atomic::write_atomically;
pub use sibling::sibling_file;
pub use stream::StreamMark;
pub use trajectory::{FrameRange, ReadSpec, TrajectoryWriter};
