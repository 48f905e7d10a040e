//! herald's schema accepts what Rewatch's accepts: every type, field, argument, enum value and
//! interface of the webhook part of Rewatch's real schema (`tests/fixtures/rewatch-schema.graphql`)
//! is in the schema herald serves, with a type a document written against Rewatch's validates
//! against. herald may be wider: more types, fields and values, non-null where Rewatch is
//! nullable in what it answers, nullable where Rewatch is non-null in what it takes, optional
//! arguments and input fields of its own.

use async_graphql::parser::parse_schema;
use async_graphql::parser::types::{
    BaseType, FieldDefinition, InputValueDefinition, Type, TypeDefinition, TypeKind,
    TypeSystemDefinition,
};
use async_graphql::Positioned;
use std::collections::HashMap;

const REWATCH: &str = include_str!("../fixtures/rewatch-schema.graphql");

/// The type definitions of an SDL, by name.
fn types(sdl: &str) -> HashMap<String, TypeDefinition> {
    parse_schema(sdl)
        .unwrap_or_else(|e| panic!("the SDL parses: {e}"))
        .definitions
        .into_iter()
        .filter_map(|d| match d {
            TypeSystemDefinition::Type(t) => Some((t.node.name.node.to_string(), t.node)),
            _ => None,
        })
        .collect()
}

/// Whether a value of herald's output type `herald` is what a client of Rewatch's `rewatch`
/// expects: the same named type in the same lists, never null where Rewatch's is not.
fn answers_as(herald: &Type, rewatch: &Type) -> bool {
    (rewatch.nullable || !herald.nullable)
        && match (&herald.base, &rewatch.base) {
            (BaseType::Named(h), BaseType::Named(r)) => h == r,
            (BaseType::List(h), BaseType::List(r)) => answers_as(h, r),
            _ => false,
        }
}

/// Whether herald's input type `herald` takes every value (and variable) that Rewatch's
/// `rewatch` takes: the same named type in the same lists, never non-null where Rewatch's is
/// nullable.
fn takes_as(herald: &Type, rewatch: &Type) -> bool {
    (herald.nullable || !rewatch.nullable)
        && match (&herald.base, &rewatch.base) {
            (BaseType::Named(h), BaseType::Named(r)) => h == r,
            (BaseType::List(h), BaseType::List(r)) => takes_as(h, r),
            _ => false,
        }
}

fn kind_name(kind: &TypeKind) -> &'static str {
    match kind {
        TypeKind::Scalar => "scalar",
        TypeKind::Object(_) => "type",
        TypeKind::Interface(_) => "interface",
        TypeKind::Union(_) => "union",
        TypeKind::Enum(_) => "enum",
        TypeKind::InputObject(_) => "input",
    }
}

/// Checks input values (arguments of field `at`, or fields of input `at`): each of Rewatch's is
/// herald's too, taking what Rewatch's takes; each of herald's own may be left out.
fn compare_inputs(
    at: &str,
    herald: &[Positioned<InputValueDefinition>],
    rewatch: &[Positioned<InputValueDefinition>],
    problems: &mut Vec<String>,
) {
    let find = |list: &[Positioned<InputValueDefinition>], name: &str| {
        list.iter()
            .find(|v| v.node.name.node == name)
            .map(|v| v.node.clone())
    };
    for r in rewatch {
        let name = r.node.name.node.as_str();
        match find(herald, name) {
            None => problems.push(format!("{at}: {name} is missing")),
            Some(h) if !takes_as(&h.ty.node, &r.node.ty.node) => problems.push(format!(
                "{at}: {name} is {} where Rewatch's is {}",
                h.ty.node, r.node.ty.node
            )),
            Some(_) => {}
        }
    }
    for h in herald {
        let name = h.node.name.node.as_str();
        let optional = h.node.ty.node.nullable || h.node.default_value.is_some();
        if find(rewatch, name).is_none() && !optional {
            problems.push(format!(
                "{at}: {name} is required, and Rewatch has no such input"
            ));
        }
    }
}

fn compare_fields(
    type_name: &str,
    herald: &[Positioned<FieldDefinition>],
    rewatch: &[Positioned<FieldDefinition>],
    problems: &mut Vec<String>,
) {
    for r in rewatch {
        let name = r.node.name.node.as_str();
        let at = format!("{type_name}.{name}");
        let Some(h) = herald.iter().find(|f| f.node.name.node == name) else {
            problems.push(format!("{at} is missing"));
            continue;
        };
        if !answers_as(&h.node.ty.node, &r.node.ty.node) {
            problems.push(format!(
                "{at} is {} where Rewatch's is {}",
                h.node.ty.node, r.node.ty.node
            ));
        }
        compare_inputs(&at, &h.node.arguments, &r.node.arguments, problems);
    }
}

fn compare_implements(
    type_name: &str,
    herald: &[Positioned<async_graphql::Name>],
    rewatch: &[Positioned<async_graphql::Name>],
    problems: &mut Vec<String>,
) {
    for r in rewatch {
        if !herald.iter().any(|h| h.node == r.node) {
            problems.push(format!("{type_name} does not implement {}", r.node));
        }
    }
}

/// Every way herald's schema (`herald`, an SDL) refuses what Rewatch's accepts.
fn differences(herald: &str, rewatch: &str) -> Vec<String> {
    let (herald, rewatch) = (types(herald), types(rewatch));
    let mut problems = Vec::new();
    let mut names: Vec<&String> = rewatch.keys().collect();
    names.sort();
    for name in names {
        let r = &rewatch[name];
        let Some(h) = herald.get(name) else {
            problems.push(format!("{} {name} is missing", kind_name(&r.kind)));
            continue;
        };
        match (&h.kind, &r.kind) {
            (TypeKind::Scalar, TypeKind::Scalar) => {}
            (TypeKind::Object(h), TypeKind::Object(r)) => {
                compare_implements(name, &h.implements, &r.implements, &mut problems);
                compare_fields(name, &h.fields, &r.fields, &mut problems);
            }
            (TypeKind::Interface(h), TypeKind::Interface(r)) => {
                compare_implements(name, &h.implements, &r.implements, &mut problems);
                compare_fields(name, &h.fields, &r.fields, &mut problems);
            }
            (TypeKind::Enum(h), TypeKind::Enum(r)) => {
                for v in &r.values {
                    let value = &v.node.value.node;
                    if !h.values.iter().any(|hv| hv.node.value.node == *value) {
                        problems.push(format!("{name}.{value} is missing"));
                    }
                }
            }
            (TypeKind::InputObject(h), TypeKind::InputObject(r)) => {
                compare_inputs(name, &h.fields, &r.fields, &mut problems);
            }
            (h, r) => problems.push(format!(
                "{name} is a {} where Rewatch's is a {}",
                kind_name(h),
                kind_name(r)
            )),
        }
    }
    problems
}

#[test]
fn herald_accepts_what_rewatchs_schema_accepts() {
    let problems = differences(&herald::graphql::sdl(), REWATCH);
    assert!(
        problems.is_empty(),
        "herald's schema differs from Rewatch's:\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_comparison_finds_what_a_narrower_schema_refuses() {
    let rewatch = r#"
        scalar Url
        interface Node { id: ID! }
        enum Event { VIDEO MEMBER }
        type Hook implements Node { id: ID! url: Url! note: String deliveries(first: Int, ids: [ID!]): [Hook] }
        input Make { url: Url! events: [Event!]! }
    "#;
    let narrower = r#"
        interface Node { id: ID! }
        enum Event { VIDEO }
        type Hook { id: ID! url: String note: String deliveries(first: Int!, ids: [ID!], strict: Boolean!): [Hook] }
        input Make { url: String! events: [Event!]! secret: String! }
    "#;
    let mut found = differences(narrower, rewatch);
    found.sort();
    assert_eq!(
        found,
        vec![
            "Event.MEMBER is missing",
            "Hook does not implement Node",
            "Hook.deliveries: first is Int! where Rewatch's is Int",
            "Hook.deliveries: strict is required, and Rewatch has no such input",
            "Hook.url is String where Rewatch's is Url!",
            "Make: secret is required, and Rewatch has no such input",
            "Make: url is String! where Rewatch's is Url!",
            "scalar Url is missing",
        ]
    );
    let wider = r#"
        scalar Url
        interface Node { id: ID! }
        enum Event { VIDEO MEMBER COMMENT }
        type Hook implements Node { id: ID! url: Url! note: String! extra: Int deliveries(first: Int, ids: [ID], last: Int = 3): [Hook!]! }
        input Make { url: Url events: [Event!] secret: String }
    "#;
    assert_eq!(differences(wider, rewatch), Vec::<String>::new());
}
