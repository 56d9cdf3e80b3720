//! The traffic-globe domain library: what a traffic event is, how rows of traffic data are
//! read from CSV, the pacing maths of a replay, the live aggregates, and the wire types that
//! the sender, the server and the browser share.
//!
//! Pure and synchronous: no I/O beyond the `Read` a caller hands in, no async runtime.

pub mod aggregates;
pub mod analytics;
pub mod countries;
pub mod csv;
pub mod event;
pub mod generate;
pub mod ingest;
pub mod json;
pub mod pacing;
pub mod secret;
#[cfg(feature = "service")]
pub mod service;

pub use aggregates::{Aggregates, AggregatesConfig, DataClock, Location, Place, Summary};
pub use analytics::{Analytics, AnalyticsConfig, AnalyticsReport};
pub use event::{Event, Field, FieldError};
pub use secret::Secret;
