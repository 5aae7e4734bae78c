//! The sources file (filled in below).
