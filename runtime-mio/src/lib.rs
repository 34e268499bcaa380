//! The mio runtime of chorus (see the real-cluster issue).
