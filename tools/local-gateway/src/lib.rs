//! What the local gateway's binary and the tests share: the stand-in for Lambda's
//! event source mapping on DynamoDB Local's stream ([`stream`]) and the merchant's
//! stand-in endpoint for merchant events ([`inbox`]).

pub mod inbox;
pub mod stream;
