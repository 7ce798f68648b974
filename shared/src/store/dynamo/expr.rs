//! The one way this crate builds DynamoDB expressions: `SET`/`ADD`/`REMOVE` clauses, a
//! condition, and the attribute names and values they use, applied to any request.

use aws_sdk_dynamodb::operation::put_item::builders::PutItemFluentBuilder;
use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use aws_sdk_dynamodb::types::AttributeValue;
use std::collections::HashMap;

/// A condition with its name and value maps (`None` when empty: DynamoDB refuses
/// empty maps).
type ExprParts = (
    Option<String>,
    Option<HashMap<String, String>>,
    Option<HashMap<String, AttributeValue>>,
);

/// An update and/or condition expression with its placeholders. Every attribute
/// name is referenced as `#name`; every value as `:placeholder`.
#[derive(Debug, Default, Clone)]
pub(crate) struct Expr {
    sets: Vec<String>,
    adds: Vec<String>,
    removes: Vec<String>,
    condition: Option<String>,
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

impl Expr {
    /// Registers an attribute name; returns its placeholder `#attr`.
    pub fn name(&mut self, attr: &str) -> String {
        let placeholder = format!("#{attr}");
        self.names.insert(placeholder.clone(), attr.to_string());
        placeholder
    }

    /// Registers a value; returns its placeholder `:placeholder`.
    pub fn value(&mut self, placeholder: &str, value: AttributeValue) -> String {
        let placeholder = format!(":{placeholder}");
        self.values.insert(placeholder.clone(), value);
        placeholder
    }

    /// `SET attr = value`.
    pub fn set(&mut self, attr: &str, value: AttributeValue) -> &mut Self {
        let (n, v) = (self.name(attr), self.value(attr, value));
        self.sets.push(format!("{n} = {v}"));
        self
    }

    /// `SET attr = value` when `value` is present.
    pub fn set_some(&mut self, attr: &str, value: Option<AttributeValue>) -> &mut Self {
        if let Some(value) = value {
            self.set(attr, value);
        }
        self
    }

    /// `SET attr = if_not_exists(attr, value)`: keeps what is stored.
    pub fn set_if_absent(&mut self, attr: &str, value: AttributeValue) -> &mut Self {
        let (n, v) = (self.name(attr), self.value(attr, value));
        self.sets.push(format!("{n} = if_not_exists({n}, {v})"));
        self
    }

    /// `SET attr = if_not_exists(attr, 0) + 1`: a counter moved by one, whatever it was.
    pub fn increment(&mut self, attr: &str) -> &mut Self {
        let n = self.name(attr);
        let zero = self.value("zero", AttributeValue::N("0".into()));
        let one = self.value("one", AttributeValue::N("1".into()));
        self.sets
            .push(format!("{n} = if_not_exists({n}, {zero}) + {one}"));
        self
    }

    /// Appends one element to the list `attr` (created empty if absent).
    pub fn append(&mut self, attr: &str, element: AttributeValue) -> &mut Self {
        let n = self.name(attr);
        let v = self.value(attr, AttributeValue::L(vec![element]));
        let empty = self.value("empty_list", AttributeValue::L(vec![]));
        self.sets.push(format!(
            "{n} = list_append(if_not_exists({n}, {empty}), {v})"
        ));
        self
    }

    /// `ADD attr value` (numbers, sets).
    pub fn add(&mut self, attr: &str, value: AttributeValue) -> &mut Self {
        let (n, v) = (self.name(attr), self.value(attr, value));
        self.adds.push(format!("{n} {v}"));
        self
    }

    /// `SET path = value`, both already written with placeholders (a map entry's
    /// path, or a value expression such as `if_not_exists(…)`).
    pub fn set_path(&mut self, path: &str, value: &str) -> &mut Self {
        self.sets.push(format!("{path} = {value}"));
        self
    }

    /// `ADD path value`, both already written with placeholders.
    pub fn add_raw(&mut self, path: &str, value: &str) -> &mut Self {
        self.adds.push(format!("{path} {value}"));
        self
    }

    /// `REMOVE path`, already written with placeholders.
    pub fn remove_path(&mut self, path: &str) -> &mut Self {
        self.removes.push(path.to_string());
        self
    }

    /// `REMOVE attr`.
    pub fn remove(&mut self, attr: &str) -> &mut Self {
        let n = self.name(attr);
        self.removes.push(n);
        self
    }

    /// The condition, written with placeholders registered by [`Self::name`] and
    /// [`Self::value`].
    pub fn condition(&mut self, condition: impl Into<String>) -> &mut Self {
        self.condition = Some(condition.into());
        self
    }

    /// The condition so far `AND (condition)` (or `condition` alone).
    pub fn and_condition(&mut self, condition: impl Into<String>) -> &mut Self {
        let condition = condition.into();
        self.condition = Some(match self.condition.take() {
            Some(before) => format!("{before} AND ({condition})"),
            None => condition,
        });
        self
    }

    /// The update expression (`SET ... ADD ...`), if any clause was added.
    pub fn update_expression(&self) -> Option<String> {
        let mut parts = Vec::new();
        if !self.sets.is_empty() {
            parts.push(format!("SET {}", self.sets.join(", ")));
        }
        if !self.adds.is_empty() {
            parts.push(format!("ADD {}", self.adds.join(", ")));
        }
        if !self.removes.is_empty() {
            parts.push(format!("REMOVE {}", self.removes.join(", ")));
        }
        (!parts.is_empty()).then(|| parts.join(" "))
    }

    /// The condition, names and values (for a request this type has no helper for).
    pub fn into_parts(self) -> ExprParts {
        self.parts()
    }

    fn parts(self) -> ExprParts {
        let names = (!self.names.is_empty()).then_some(self.names);
        let values = (!self.values.is_empty()).then_some(self.values);
        (self.condition, names, values)
    }

    /// Applies the update, condition, names and values to an `UpdateItem`.
    pub fn apply_to_update(self, builder: UpdateItemFluentBuilder) -> UpdateItemFluentBuilder {
        let update = self.update_expression();
        let (condition, names, values) = self.parts();
        builder
            .set_update_expression(update)
            .set_condition_expression(condition)
            .set_expression_attribute_names(names)
            .set_expression_attribute_values(values)
    }

    /// The update, condition, names and values as one item of a transaction.
    pub fn into_transact_update(
        self,
        table: &str,
        key: (&str, AttributeValue),
    ) -> Result<aws_sdk_dynamodb::types::TransactWriteItem, aws_sdk_dynamodb::error::BuildError>
    {
        let update = self.update_expression();
        let (condition, names, values) = self.parts();
        let update = aws_sdk_dynamodb::types::Update::builder()
            .table_name(table)
            .key(key.0, key.1)
            .set_update_expression(update)
            .set_condition_expression(condition)
            .set_expression_attribute_names(names)
            .set_expression_attribute_values(values)
            .return_values_on_condition_check_failure(
                aws_sdk_dynamodb::types::ReturnValuesOnConditionCheckFailure::AllOld,
            )
            .build()?;
        Ok(aws_sdk_dynamodb::types::TransactWriteItem::builder()
            .update(update)
            .build())
    }

    /// The condition, names and values with `item` as one `Put` of a transaction.
    pub fn into_transact_put(
        self,
        table: &str,
        item: HashMap<String, AttributeValue>,
    ) -> Result<aws_sdk_dynamodb::types::TransactWriteItem, aws_sdk_dynamodb::error::BuildError>
    {
        debug_assert!(self.update_expression().is_none(), "a Put has no update");
        let (condition, names, values) = self.parts();
        let put = aws_sdk_dynamodb::types::Put::builder()
            .table_name(table)
            .set_item(Some(item))
            .set_condition_expression(condition)
            .set_expression_attribute_names(names)
            .set_expression_attribute_values(values)
            .return_values_on_condition_check_failure(
                aws_sdk_dynamodb::types::ReturnValuesOnConditionCheckFailure::AllOld,
            )
            .build()?;
        Ok(aws_sdk_dynamodb::types::TransactWriteItem::builder()
            .put(put)
            .build())
    }

    /// Applies the condition, names and values to a `PutItem`.
    pub fn apply_to_put(self, builder: PutItemFluentBuilder) -> PutItemFluentBuilder {
        debug_assert!(self.update_expression().is_none(), "PutItem has no update");
        let (condition, names, values) = self.parts();
        builder
            .set_condition_expression(condition)
            .set_expression_attribute_names(names)
            .set_expression_attribute_values(values)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_set_add_and_placeholders() {
        let mut e = Expr::default();
        e.set("status", AttributeValue::S("x".into()))
            .set_if_absent("created_at", AttributeValue::S("t".into()))
            .append("notes", AttributeValue::S("n".into()))
            .add("ids", AttributeValue::Ss(vec!["e".into()]));
        assert_eq!(
            e.update_expression().unwrap(),
            "SET #status = :status, #created_at = if_not_exists(#created_at, :created_at), \
             #notes = list_append(if_not_exists(#notes, :empty_list), :notes) ADD #ids :ids"
        );
        assert_eq!(e.names["#ids"], "ids");
        assert_eq!(e.values.len(), 5);
    }

    #[test]
    fn a_condition_alone_has_no_update() {
        let mut e = Expr::default();
        let pk = e.name("pk");
        e.condition(format!("attribute_not_exists({pk})"));
        assert_eq!(e.update_expression(), None);
        let (condition, names, values) = e.parts();
        assert_eq!(condition.as_deref(), Some("attribute_not_exists(#pk)"));
        assert!(names.is_some());
        assert!(values.is_none(), "DynamoDB refuses an empty value map");
    }
}
