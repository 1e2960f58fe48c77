//! HTTP tests against the real app on a random port, each with a fresh,
//! migrated PostgreSQL database (`#[sqlx::test]`). One binary, so linking is
//! paid once.

mod access;
mod account;
mod admin;
mod assets;
mod backup;
mod blind;
mod bounds;
mod candidate;
mod candidate_details;
mod candidates;
mod catalogues;
mod cli;
mod csrf;
mod demo;
mod escaping;
mod exports;
mod faults;
mod gif_strip;
mod gold;
mod groups;
mod health;
mod helpers;
mod hostile_input;
mod keyboard;
mod light_curve;
mod links;
mod login;
mod media_bucket;
mod media_safety;
mod media_store;
mod model;
mod notify;
mod pages;
mod pulsars;
mod ratings;
mod read_api;
#[path = "../common/s3.rs"]
mod s3;
mod scores;
#[path = "../common/testdb.rs"]
mod testdb;
mod upload_api;
mod upload_client;
mod voevent;
#[path = "../common/voevent_schema.rs"]
mod voevent_schema;
