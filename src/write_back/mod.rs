//! Write-back (issue 17): a contact changed through the gateway changes in the vendor systems
//! it came from. Each change is queued in the transaction of the change itself (the
//! `write_backs` outbox) and delivered by a worker, per contact and source in order, with an
//! `Idempotency-Key`, retries with backoff and the source's precondition.
//!
//! - [`config`]: how a source is written to (method, URL, precondition, conflict policy).
//! - [`fields`]: what a change sends (the changed fields under the format's names) and the
//!   format's limits.
//! - [`conflicts`]: a change the vendor refused as a conflict, its fields' values on both
//!   sides and their resolution.
//! - [`outbox`]: queueing, in the transaction of the change.
//! - [`claim`]: claiming due changes, in order, the later ones of a contact merged in.
//! - [`outcomes`]: recording what became of deliveries; retrying a failed change.
//! - [`queue`]: reading the queue (a contact's changes, the tenant's, its depth).
//! - [`delivery`]: one request to the vendor and what its answer means.
//! - `echo`: a delivered change is remembered as the vendor's, so the next sync does not
//!   take it for a vendor change.
//! - [`worker`]: the loop in `serve` that drains the queue.
//! - [`writable`]: which sources of a tenant are written to (cached a few seconds).
pub mod claim;
pub mod config;
pub mod conflicts;
pub mod delivery;
mod echo;
pub mod fields;
pub mod outbox;
pub mod outcomes;
pub mod queue;
pub mod worker;
pub mod writable;
