//! `local-table`: creates the product's DynamoDB tables on DynamoDB Local
//! (idempotent) — the payments table and, when named, the idempotency records'
//! table — or prints their definitions (by the template's logical ids) so they can
//! be compared with `template.yaml`.
//!
//!     local-table --endpoint http://127.0.0.1:8000 --table payments --idempotency-table payments-idempotency
//!     local-table --print-definition

use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let (mut endpoint, mut table, mut idempotency_table) = (None, None, None);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--endpoint" => endpoint = args.next(),
            "--table" => table = args.next(),
            "--idempotency-table" => idempotency_table = args.next(),
            "--print-definition" => {
                println!(
                    "{}",
                    serde_json::json!({
                        "PaymentsTable": shared::store::table_definition(),
                        "IdempotencyTable": shared::store::idempotency_table_definition(),
                    })
                );
                return;
            }
            "-h" | "--help" => {
                println!("usage: local-table --endpoint URL --table NAME [--idempotency-table NAME] | --print-definition");
                return;
            }
            other => {
                eprintln!("local-table: unknown argument {other:?}");
                std::process::exit(2);
            }
        }
    }
    let (Some(endpoint), Some(table)) = (endpoint, table) else {
        eprintln!("usage: local-table --endpoint URL --table NAME [--idempotency-table NAME] | --print-definition");
        std::process::exit(2);
    };
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new(
            "local",
            "local",
            None,
            None,
            "local-table",
        ))
        .endpoint_url(&endpoint)
        .build();
    let client = aws_sdk_dynamodb::Client::from_conf(config);
    let exists = |name: String| {
        let client = client.clone();
        async move {
            client
                .describe_table()
                .table_name(name)
                .send()
                .await
                .is_ok()
        }
    };
    let tables = std::iter::once((table, false)).chain(idempotency_table.map(|t| (t, true)));
    for (name, idempotency) in tables {
        if exists(name.clone()).await {
            println!("table {name} already exists at {endpoint}");
            continue;
        }
        let created = if idempotency {
            shared::store::create_idempotency_table(&client, &name).await
        } else {
            shared::store::create_table(&client, &name).await
        };
        match created {
            Ok(()) => println!("created table {name} at {endpoint}"),
            Err(e) => {
                eprintln!("local-table: {e}");
                std::process::exit(1);
            }
        }
    }
}
