//! `local-table`: creates the product's DynamoDB table on DynamoDB Local (idempotent),
//! or prints its definition so it can be compared with `template.yaml`.
//!
//!     local-table --endpoint http://127.0.0.1:8000 --table payments
//!     local-table --print-definition

use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let (mut endpoint, mut table) = (None, None);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--endpoint" => endpoint = args.next(),
            "--table" => table = args.next(),
            "--print-definition" => {
                println!("{}", shared::store::table_definition());
                return;
            }
            "-h" | "--help" => {
                println!("usage: local-table --endpoint URL --table NAME | --print-definition");
                return;
            }
            other => {
                eprintln!("local-table: unknown argument {other:?}");
                std::process::exit(2);
            }
        }
    }
    let (Some(endpoint), Some(table)) = (endpoint, table) else {
        eprintln!("usage: local-table --endpoint URL --table NAME | --print-definition");
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
    if client
        .describe_table()
        .table_name(&table)
        .send()
        .await
        .is_ok()
    {
        println!("table {table} already exists at {endpoint}");
        return;
    }
    match shared::store::create_table(&client, &table).await {
        Ok(()) => println!("created table {table} at {endpoint}"),
        Err(e) => {
            eprintln!("local-table: {e}");
            std::process::exit(1);
        }
    }
}
