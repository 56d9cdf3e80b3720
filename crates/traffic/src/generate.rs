//! Sample-data generator. (Being written.)
