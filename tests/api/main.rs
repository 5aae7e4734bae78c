//! Behaviour tests: each spawns the real server on 127.0.0.1:0 over a fresh database
//! (SQLite, or PostgreSQL when TEST_DATABASE_URL is set) and talks to it over HTTP.
mod auth;
mod batching;
mod common;
mod duplicates;
mod filters;
mod fuzz;
mod hardening;
mod http;
mod import;
mod indexes;
mod limits;
mod management;
mod migrations;
mod mutations;
mod node;
mod operability;
mod paging;
mod schema;
mod seed;
mod sources;
mod subscriptions;
mod sync;
mod sync_runs;
mod vendor_input;
mod vendors;
mod write_back;
