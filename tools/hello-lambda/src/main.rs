//! The cold-start floor: the smallest `lambda_runtime` function (the same runtime,
//! tokio and release profile as the real functions, nothing else). `make bench`
//! starts it in the same cold-start run as the functions, so their init and first
//! response are reported as the difference to this.

use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use serde_json::{json, Value};

#[tokio::main]
async fn main() -> Result<(), Error> {
    run(service_fn(|_event: LambdaEvent<Value>| async {
        Ok::<_, Error>(json!({"statusCode": 200, "body": "{\"hello\":\"world\"}"}))
    }))
    .await
}
