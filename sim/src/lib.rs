//! The chorus simulator.
