//! Live sync (filled in below).
