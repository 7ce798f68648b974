//! `template.yaml` declares exactly the routes of the one route table
//! (`shared::routes`): each route key on its function's integration, the merchant's
//! routes behind the API's authorizer, the webhook with none, and the operators'
//! routes always behind IAM.

use shared::routes::{Auth, Function, ROUTES};
use std::collections::BTreeSet;
use std::path::Path;

/// A route as the template declares it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct DeclaredRoute {
    key: String,
    integration: String,
    authorization: String,
}

/// The `AWS::ApiGatewayV2::Route` resources of the template, read line by line
/// (CloudFormation's tags are not YAML a parser takes without a schema).
fn declared_routes(template: &str) -> Vec<DeclaredRoute> {
    let mut routes = Vec::new();
    let mut block: Vec<&str> = Vec::new();
    let mut flush = |block: &mut Vec<&str>| {
        if block
            .iter()
            .any(|l| l.trim() == "Type: AWS::ApiGatewayV2::Route")
        {
            let field = |name: &str| {
                block
                    .iter()
                    .find_map(|l| l.trim().strip_prefix(name))
                    .map(|v| v.trim().to_string())
                    .unwrap_or_default()
            };
            routes.push(DeclaredRoute {
                key: field("RouteKey:"),
                integration: field("Target:")
                    .trim_start_matches("!Sub integrations/${")
                    .trim_end_matches('}')
                    .to_string(),
                authorization: field("AuthorizationType:"),
            });
        }
        block.clear();
    };
    for line in template.lines() {
        let top_level_resource =
            line.starts_with("  ") && !line.starts_with("   ") && line.trim_end().ends_with(':');
        if top_level_resource {
            flush(&mut block);
        }
        block.push(line);
    }
    flush(&mut block);
    routes
}

#[test]
fn the_template_declares_exactly_the_route_table() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../template.yaml");
    let template = std::fs::read_to_string(path).unwrap();
    let declared: BTreeSet<DeclaredRoute> = declared_routes(&template).into_iter().collect();
    let merchant_auth = "!If [UseIamAuth, AWS_IAM, !If [UseJwtAuth, JWT, NONE]]";
    let expected: BTreeSet<DeclaredRoute> = ROUTES
        .iter()
        .map(|r| DeclaredRoute {
            key: format!("{} {}", r.method, r.path),
            integration: r.function.integration_logical_id().to_string(),
            authorization: match r.auth {
                Auth::Merchant => merchant_auth.to_string(),
                Auth::FintocSignature => "NONE".to_string(),
                Auth::Operator => "AWS_IAM".to_string(),
            },
        })
        .collect();
    assert_eq!(declared, expected);
}

/// The value of `field` in the top-level resource `logical_id` of the template.
fn resource_field(template: &str, logical_id: &str, field: &str) -> Option<String> {
    let header = format!("  {logical_id}:");
    let mut lines = template.lines().skip_while(|l| l.trim_end() != header);
    lines.next()?;
    lines
        .take_while(|l| l.is_empty() || l.starts_with("   "))
        .find_map(|l| l.trim().strip_prefix(field)?.strip_prefix(':'))
        .map(|v| v.trim().to_string())
}

#[test]
fn each_function_times_out_in_the_template_as_the_route_table_says() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../template.yaml");
    let template = std::fs::read_to_string(path).unwrap();
    for function in [
        Function::CreateIntent,
        Function::Webhook,
        Function::Operations,
    ] {
        assert_eq!(
            resource_field(&template, function.logical_id(), "Timeout"),
            Some(function.timeout_seconds().to_string()),
            "{}",
            function.logical_id()
        );
    }
}

#[test]
fn the_resource_reader_stays_inside_its_resource() {
    let template = "Resources:\n  A:\n    Type: X\n    Properties:\n      Timeout: 3\n\n  B:\n    Properties:\n      Timeout: 9\n";
    assert_eq!(resource_field(template, "A", "Timeout"), Some("3".into()));
    assert_eq!(resource_field(template, "B", "Timeout"), Some("9".into()));
    assert_eq!(resource_field(template, "A", "Memory"), None);
    assert_eq!(resource_field(template, "C", "Timeout"), None);
}

#[test]
fn the_reader_finds_a_route_and_ignores_other_resources() {
    let template = "Resources:\n  A:\n    Type: AWS::ApiGatewayV2::Route\n    Properties:\n      RouteKey: GET /x/{id}\n      Target: !Sub integrations/${XIntegration}\n      AuthorizationType: NONE\n\n  B:\n    Type: AWS::SNS::Topic\n";
    assert_eq!(
        declared_routes(template),
        vec![DeclaredRoute {
            key: "GET /x/{id}".into(),
            integration: "XIntegration".into(),
            authorization: "NONE".into(),
        }]
    );
}
