//! DynamoDB Local's stream of a table, read as Lambda's event source mapping reads
//! the table's stream when deployed: shard by shard, from the stream's start, each
//! read resuming after the last record handed out; each record in the shape Lambda
//! hands a function. It speaks the Streams API's JSON protocol directly: the AWS
//! SDK's Streams client refuses DynamoDB Local's records, which write an empty map
//! as `{}` rather than `{"M": {}}` (mended here to what DynamoDB sends).

use serde_json::{json, Value};
use std::collections::HashMap;

/// A reader of one table's stream.
pub struct StreamTap {
    http: reqwest::Client,
    endpoint: String,
    table: String,
    arn: Option<String>,
    /// Each shard's last sequence number read.
    read_to: HashMap<String, String>,
}

/// The stream could not be read.
#[derive(Debug)]
pub struct StreamError(pub String);

impl std::fmt::Display for StreamError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// An attribute value written as `{}` made the empty map DynamoDB would send,
/// within maps and lists.
fn mend_value(value: &mut Value) {
    let Value::Object(map) = value else {
        return;
    };
    if map.is_empty() {
        *value = json!({"M": {}});
        return;
    }
    if let Some(Value::Object(entries)) = map.get_mut("M") {
        entries.values_mut().for_each(mend_value);
    }
    if let Some(Value::Array(items)) = map.get_mut("L") {
        items.iter_mut().for_each(mend_value);
    }
}

/// A stream record's images (`Keys`, `NewImage`, `OldImage`) mended.
pub fn mend(change: &mut Value) {
    for image in ["Keys", "NewImage", "OldImage"] {
        if let Some(Value::Object(attributes)) = change.get_mut(image) {
            attributes.values_mut().for_each(mend_value);
        }
    }
}

impl StreamTap {
    /// A reader of `table`'s stream on the DynamoDB Local at `endpoint`.
    pub fn new(endpoint: &str, table: &str) -> Self {
        Self {
            http: reqwest::Client::new(),
            endpoint: endpoint.to_string(),
            table: table.to_string(),
            arn: None,
            read_to: HashMap::new(),
        }
    }

    async fn call(&self, target: &str, body: Value) -> Result<Value, StreamError> {
        let answer = self
            .http
            .post(&self.endpoint)
            .header("content-type", "application/x-amz-json-1.0")
            .header("x-amz-target", target)
            .header(
                "authorization",
                "AWS4-HMAC-SHA256 Credential=local/20260101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0",
            )
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| StreamError(format!("{target}: {e}")))?;
        let status = answer.status();
        let json: Value = answer
            .json()
            .await
            .map_err(|e| StreamError(format!("{target}: {e}")))?;
        if !status.is_success() {
            return Err(StreamError(format!("{target}: {status} {json}")));
        }
        Ok(json)
    }

    async fn arn(&mut self) -> Result<String, StreamError> {
        if let Some(arn) = &self.arn {
            return Ok(arn.clone());
        }
        let table = self
            .call(
                "DynamoDB_20120810.DescribeTable",
                json!({"TableName": self.table}),
            )
            .await?;
        let arn = table["Table"]["LatestStreamArn"]
            .as_str()
            .ok_or_else(|| StreamError(format!("table {} has no stream", self.table)))?
            .to_string();
        self.arn = Some(arn.clone());
        Ok(arn)
    }

    /// Every record written since the last read, oldest first per shard, as
    /// Lambda's `Records`.
    pub async fn read(&mut self) -> Result<Vec<Value>, StreamError> {
        let arn = self.arn().await?;
        let description = self
            .call(
                "DynamoDBStreams_20120810.DescribeStream",
                json!({"StreamArn": arn}),
            )
            .await?;
        let shards = description["StreamDescription"]["Shards"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let mut records = Vec::new();
        for shard in shards {
            let Some(shard_id) = shard["ShardId"].as_str().map(str::to_string) else {
                continue;
            };
            let request = match self.read_to.get(&shard_id) {
                Some(sequence) => json!({"StreamArn": arn, "ShardId": shard_id,
                    "ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": sequence}),
                None => json!({"StreamArn": arn, "ShardId": shard_id,
                    "ShardIteratorType": "TRIM_HORIZON"}),
            };
            let mut iterator = self
                .call("DynamoDBStreams_20120810.GetShardIterator", request)
                .await?["ShardIterator"]
                .as_str()
                .map(str::to_string);
            // A page may be empty while later ones are not: read until a page is
            // empty twice running or the shard ends.
            let mut empty_pages = 0;
            while let Some(current) = iterator.take() {
                let page = match self
                    .call(
                        "DynamoDBStreams_20120810.GetRecords",
                        json!({"ShardIterator": current}),
                    )
                    .await
                {
                    Ok(page) => page,
                    // DynamoDB Local: a shard with nothing written yet.
                    Err(e) if e.0.contains("TrimmedDataAccessException") => break,
                    Err(e) => return Err(e),
                };
                let page_records = page["Records"].as_array().cloned().unwrap_or_default();
                if page_records.is_empty() {
                    empty_pages += 1;
                    if empty_pages == 2 {
                        break;
                    }
                } else {
                    empty_pages = 0;
                }
                iterator = page["NextShardIterator"].as_str().map(str::to_string);
                for mut record in page_records {
                    if let Some(sequence) = record["dynamodb"]["SequenceNumber"].as_str() {
                        self.read_to.insert(shard_id.clone(), sequence.to_string());
                    }
                    mend(&mut record["dynamodb"]);
                    records.push(record);
                }
            }
        }
        Ok(records)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_attribute_value_becomes_the_empty_map() {
        let mut change = json!({"NewImage": {
            "metadata": {}, "amount": {"N": "1"}, "kept": {"M": {}},
            "nested": {"M": {"inner": {}}}, "list": {"L": [{}]}
        }});
        mend(&mut change);
        assert_eq!(
            change,
            json!({"NewImage": {
                "metadata": {"M": {}}, "amount": {"N": "1"}, "kept": {"M": {}},
                "nested": {"M": {"inner": {"M": {}}}}, "list": {"L": [{"M": {}}]}
            }})
        );
    }
}
