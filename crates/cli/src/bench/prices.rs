//! The AWS list prices `keyward bench cost` applies: the one place they are written down.
//!
//! Each price names its unit, its region, the public pricing page it comes from and the date it
//! was written here. The figures are the published on-demand list prices for us-east-1 as known
//! on that date (no free tier, no savings plan, no volume tier beyond the first); they were not
//! fetched by the program. Check the page before quoting a figure, and change it here only: the
//! model, its tests and `docs/cost.md` read it from this table.

use serde::Serialize;

/// One list price: `usd` dollars for every `per` units of `unit`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Price {
    /// What is billed, as the pricing page names it.
    pub item: &'static str,
    pub usd: f64,
    /// How many units `usd` buys (1,000,000 for "per million requests").
    pub per: f64,
    pub unit: &'static str,
    pub region: &'static str,
    /// The AWS pricing page the figure is read from.
    pub source: &'static str,
    /// When the figure was written here (ISO 8601 date).
    pub as_of: &'static str,
}

impl Price {
    /// What `units` of this price cost, in dollars.
    pub fn cost(&self, units: f64) -> f64 {
        units * self.usd / self.per
    }
}

const REGION: &str = "us-east-1";
const AS_OF: &str = "2026-11-27";
const LAMBDA_PAGE: &str = "https://aws.amazon.com/lambda/pricing/";
const DYNAMODB_PAGE: &str = "https://aws.amazon.com/dynamodb/pricing/on-demand/";
const API_GATEWAY_PAGE: &str = "https://aws.amazon.com/api-gateway/pricing/";

/// Lambda requests (any architecture): $0.20 per million invocations.
pub const LAMBDA_REQUESTS: Price = Price {
    item: "Lambda requests",
    usd: 0.20,
    per: 1_000_000.0,
    unit: "invocations",
    region: REGION,
    source: LAMBDA_PAGE,
    as_of: AS_OF,
};

/// Lambda duration on arm64 (Graviton), first pricing tier (6 billion GB-seconds a month):
/// $0.0000133334 per GB-second, billed in 1 ms increments.
pub const LAMBDA_ARM64_GB_SECOND: Price = Price {
    item: "Lambda duration, arm64",
    usd: 0.000_013_333_4,
    per: 1.0,
    unit: "GB-seconds",
    region: REGION,
    source: LAMBDA_PAGE,
    as_of: AS_OF,
};

/// DynamoDB on-demand writes (Standard table class), after the November 2024 reduction:
/// $0.625 per million write request units (1 WRU per 1 KB written, 2 in a transaction).
pub const DYNAMODB_WRITE: Price = Price {
    item: "DynamoDB on-demand write request units",
    usd: 0.625,
    per: 1_000_000.0,
    unit: "WRU",
    region: REGION,
    source: DYNAMODB_PAGE,
    as_of: AS_OF,
};

/// DynamoDB on-demand reads (Standard table class), after the November 2024 reduction:
/// $0.125 per million read request units (1 RRU per 4 KB read consistently).
pub const DYNAMODB_READ: Price = Price {
    item: "DynamoDB on-demand read request units",
    usd: 0.125,
    per: 1_000_000.0,
    unit: "RRU",
    region: REGION,
    source: DYNAMODB_PAGE,
    as_of: AS_OF,
};

/// DynamoDB Streams: $0.02 per 100,000 stream read request units (`GetRecords`). The reads a
/// Lambda trigger makes are not charged, so keyward's aggregator reads its stream for free.
pub const DYNAMODB_STREAM_READ: Price = Price {
    item: "DynamoDB Streams read request units (free for Lambda triggers)",
    usd: 0.02,
    per: 100_000.0,
    unit: "stream RRU",
    region: REGION,
    source: DYNAMODB_PAGE,
    as_of: AS_OF,
};

/// API Gateway REST APIs, first 333 million requests a month: $3.50 per million. Context only:
/// `keyward bench cost` counts what keyward adds beyond API Gateway.
pub const API_GATEWAY_REST: Price = Price {
    item: "API Gateway REST API requests (context, not in the total)",
    usd: 3.50,
    per: 1_000_000.0,
    unit: "requests",
    region: REGION,
    source: API_GATEWAY_PAGE,
    as_of: AS_OF,
};

/// API Gateway HTTP APIs, first 300 million requests a month (each 512 KB counts as one):
/// $1.00 per million. Context only.
pub const API_GATEWAY_HTTP: Price = Price {
    item: "API Gateway HTTP API requests (context, not in the total)",
    usd: 1.00,
    per: 1_000_000.0,
    unit: "requests",
    region: REGION,
    source: API_GATEWAY_PAGE,
    as_of: AS_OF,
};

/// Every price above, in the order the report lists them.
pub const ALL: [Price; 7] = [
    LAMBDA_REQUESTS,
    LAMBDA_ARM64_GB_SECOND,
    DYNAMODB_READ,
    DYNAMODB_WRITE,
    DYNAMODB_STREAM_READ,
    API_GATEWAY_REST,
    API_GATEWAY_HTTP,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_convert_units_to_dollars() {
        assert!((LAMBDA_REQUESTS.cost(1_000_000.0) - 0.20).abs() < 1e-12);
        assert!((DYNAMODB_WRITE.cost(1_000_000.0) - 0.625).abs() < 1e-12);
        assert!((DYNAMODB_READ.cost(4_000_000.0) - 0.5).abs() < 1e-12);
        assert!((DYNAMODB_STREAM_READ.cost(100_000.0) - 0.02).abs() < 1e-12);
        // 1M invocations of 2 ms at 256 MB: 500 GB-s.
        assert!((LAMBDA_ARM64_GB_SECOND.cost(500.0) - 0.006_666_7).abs() < 1e-9);
    }

    #[test]
    fn every_price_names_its_region_page_and_date() {
        for p in ALL {
            assert_eq!(p.region, "us-east-1", "{}", p.item);
            assert!(
                p.source.starts_with("https://aws.amazon.com/"),
                "{}",
                p.item
            );
            assert_eq!(p.as_of.len(), 10, "{}", p.item);
            assert!(p.usd > 0.0 && p.per >= 1.0, "{}", p.item);
        }
    }
}
