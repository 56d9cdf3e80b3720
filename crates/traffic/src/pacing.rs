//! Pacing maths for replays. (Being written.)
