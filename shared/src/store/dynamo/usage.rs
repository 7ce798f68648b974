//! Usage metering: how many DynamoDB requests a store made and the capacity
//! DynamoDB reported for them (the cost test and the benchmarks read it).

use aws_sdk_dynamodb::types::ConsumedCapacity;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Counts of DynamoDB requests and consumed capacity units.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct Usage {
    /// GetItem requests.
    pub read_requests: u64,
    /// PutItem, UpdateItem and DeleteItem requests, conditional failures included.
    pub write_requests: u64,
    /// Read capacity units DynamoDB reported.
    pub read_units: f64,
    /// Write capacity units DynamoDB reported (a failed condition reports none,
    /// though DynamoDB bills it as a write of the item's size).
    pub write_units: f64,
    /// Writes refused by their condition.
    pub failed_conditions: u64,
}

impl std::ops::Sub for Usage {
    type Output = Usage;
    fn sub(self, o: Usage) -> Usage {
        Usage {
            read_requests: self.read_requests - o.read_requests,
            write_requests: self.write_requests - o.write_requests,
            read_units: self.read_units - o.read_units,
            write_units: self.write_units - o.write_units,
            failed_conditions: self.failed_conditions - o.failed_conditions,
        }
    }
}

/// The counters behind [`Usage`], shared by clones of a store.
#[derive(Debug, Default)]
pub(crate) struct UsageMeter {
    read_requests: AtomicU64,
    write_requests: AtomicU64,
    /// Thousandths of a unit, to stay in atomics.
    read_milli_units: AtomicU64,
    write_milli_units: AtomicU64,
    failed_conditions: AtomicU64,
}

impl UsageMeter {
    /// One read and what it consumed.
    pub fn read(&self, capacity: Option<&ConsumedCapacity>) {
        self.read_requests.fetch_add(1, Relaxed);
        self.read_milli_units
            .fetch_add(milli_units(capacity), Relaxed);
    }

    /// One write and what it consumed.
    pub fn write(&self, capacity: Option<&ConsumedCapacity>) {
        self.write_requests.fetch_add(1, Relaxed);
        self.write_milli_units
            .fetch_add(milli_units(capacity), Relaxed);
    }

    /// One write spanning tables (a transaction): what each table consumed.
    pub fn write_across(&self, capacities: &[ConsumedCapacity]) {
        self.write_requests.fetch_add(1, Relaxed);
        let milli: u64 = capacities.iter().map(|c| milli_units(Some(c))).sum();
        self.write_milli_units.fetch_add(milli, Relaxed);
    }

    /// One write refused by its condition.
    pub fn failed_write(&self) {
        self.write(None);
        self.failed_conditions.fetch_add(1, Relaxed);
    }

    /// The counts so far.
    pub fn snapshot(&self) -> Usage {
        Usage {
            read_requests: self.read_requests.load(Relaxed),
            write_requests: self.write_requests.load(Relaxed),
            read_units: self.read_milli_units.load(Relaxed) as f64 / 1000.0,
            write_units: self.write_milli_units.load(Relaxed) as f64 / 1000.0,
            failed_conditions: self.failed_conditions.load(Relaxed),
        }
    }
}

fn milli_units(capacity: Option<&ConsumedCapacity>) -> u64 {
    capacity
        .and_then(ConsumedCapacity::capacity_units)
        .map_or(0, |u| (u * 1000.0).round() as u64)
}
