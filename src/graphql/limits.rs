//! Limits async-graphql does not enforce in bounded time: the size of a document once its
//! fragments are spread, and how long one query or mutation may run.
//!
//! async-graphql's own checks (recursion depth, directives, complexity, some validation rules)
//! walk the document spreading every fragment where it is used, without remembering what a
//! fragment came to. A 1 KB document whose thirty fragments each spread the next one twice
//! stands for 2^30 fields, and those walks take minutes of CPU before any limit is reached.
//! [`Limits`] counts the expanded size first, remembering each fragment's size, in time
//! proportional to the document, and refuses the request before those checks run.

use super::{Services, MAX_COMPLEXITY};
use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextExecute, NextPrepareRequest,
};
use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use async_graphql::{Request, Response, ServerError, ServerResult};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// The most fields a document may select once every fragment spread is replaced by the
/// fragment's fields (each operation and each fragment on its own). The same as
/// [`MAX_COMPLEXITY`], which counts one per field too: a query within one is within the other.
pub const MAX_EXPANDED_FIELDS: usize = MAX_COMPLEXITY;

/// The deepest nesting of selections, counting a fragment spread as a level; async-graphql's
/// recursion limit is the same.
pub const MAX_NESTING: usize = 64;

/// How long a query or mutation may run (unless [`Limits::time`] says otherwise): this, or the
/// delivery time limit plus [`ATTEMPT_MARGIN`] when that is longer (`testWebhook` and
/// `redeliverWebhookDelivery` make an attempt while the caller waits). Past it the request is
/// stopped at its next await and answered with an error. A change is one transaction, so it is
/// then whole or absent; an attempt cut short is made again later, like one cut off by a crash.
pub const REQUEST_TIME_LIMIT: Duration = Duration::from_secs(30);

/// What a request that makes an attempt may take beyond the attempt.
pub const ATTEMPT_MARGIN: Duration = Duration::from_secs(10);

/// Why a document is refused before validation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TooLarge {
    #[error(
        "The query is too complex: it selects more than {MAX_EXPANDED_FIELDS} fields once its fragments are spread; ask for less in one request"
    )]
    Fields,
    #[error(
        "The query nests selections more than {MAX_NESTING} levels deep, counting fragment spreads"
    )]
    Nesting,
    #[error("Fragment `{0}` spreads itself, directly or through other fragments")]
    Cycle(String),
}

/// Checks every operation and every fragment of `doc` against [`MAX_EXPANDED_FIELDS`] and
/// [`MAX_NESTING`], and for fragment cycles. Each fragment is expanded once.
pub fn check_expanded_size(doc: &ExecutableDocument) -> Result<(), TooLarge> {
    let mut expansion = Expansion {
        doc,
        fragments: HashMap::new(),
    };
    for name in doc.fragments.keys() {
        expansion.fragment(name, 0)?;
    }
    for (_, operation) in doc.operations.iter() {
        expansion.set(&operation.node.selection_set.node, 0)?;
    }
    Ok(())
}

/// The expanded size of a selection set: its fields, and how many levels it nests below itself.
#[derive(Debug, Clone, Copy, Default)]
struct Size {
    fields: usize,
    height: usize,
}

struct Expansion<'a> {
    doc: &'a ExecutableDocument,
    /// Each fragment's size once known; `None` while it is being expanded (to find cycles).
    fragments: HashMap<&'a str, Option<Size>>,
}

impl<'a> Expansion<'a> {
    /// The size of `set`, found `depth` levels below an operation or fragment.
    fn set(&mut self, set: &'a SelectionSet, depth: usize) -> Result<Size, TooLarge> {
        if depth > MAX_NESTING {
            return Err(TooLarge::Nesting);
        }
        let mut size = Size::default();
        for item in &set.items {
            let (fields, below) = match &item.node {
                Selection::Field(f) => (1, self.set(&f.node.selection_set.node, depth + 1)?),
                Selection::InlineFragment(f) => {
                    (0, self.set(&f.node.selection_set.node, depth + 1)?)
                }
                Selection::FragmentSpread(s) => {
                    (0, self.fragment(&s.node.fragment_name.node, depth + 1)?)
                }
            };
            size.fields = size
                .fields
                .saturating_add(fields)
                .saturating_add(below.fields);
            if size.fields > MAX_EXPANDED_FIELDS {
                return Err(TooLarge::Fields);
            }
            size.height = size.height.max(below.height + 1);
        }
        if depth + size.height > MAX_NESTING {
            return Err(TooLarge::Nesting);
        }
        Ok(size)
    }

    /// The size of fragment `name`, spread `depth` levels deep; an unknown fragment is empty
    /// (validation reports it).
    fn fragment(&mut self, name: &'a str, depth: usize) -> Result<Size, TooLarge> {
        match self.fragments.get(name) {
            Some(Some(size)) if depth + size.height > MAX_NESTING => Err(TooLarge::Nesting),
            Some(Some(size)) => Ok(*size),
            Some(None) => Err(TooLarge::Cycle(name.to_owned())),
            None => {
                let Some(fragment) = self.doc.fragments.get(name) else {
                    return Ok(Size::default());
                };
                self.fragments.insert(name, None);
                let size = self.set(&fragment.node.selection_set.node, depth)?;
                self.fragments.insert(name, Some(size));
                Ok(size)
            }
        }
    }
}

/// The schema extension that applies the limits of this module: the expanded size before
/// validation, the time limit around execution. Over HTTP and WebSocket alike.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The time limit when the delivery time limit does not call for more.
    pub time: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            time: REQUEST_TIME_LIMIT,
        }
    }
}

impl ExtensionFactory for Limits {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(*self)
    }
}

#[async_trait::async_trait]
impl Extension for Limits {
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        mut request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        // Parsed here once; async-graphql uses this parse instead of parsing again.
        check_expanded_size(request.parsed_query()?)
            .map_err(|e| ServerError::new(e.to_string(), None))?;
        next.run(ctx, request).await
    }

    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        let attempt = ctx
            .data_opt::<Services>()
            .map(|s| s.outbox.attempt_timeout() + ATTEMPT_MARGIN);
        let limit = attempt.map_or(self.time, |a| a.max(self.time));
        match tokio::time::timeout(limit, next.run(ctx, operation_name)).await {
            Ok(response) => response,
            Err(_) => {
                tracing::warn!(
                    operation = operation_name.unwrap_or(""),
                    limit_ms = u64::try_from(limit.as_millis()).unwrap_or(u64::MAX),
                    "request stopped at its time limit"
                );
                Response::from_errors(vec![ServerError::new(
                    format!(
                        "The request took longer than {} ms and was stopped",
                        limit.as_millis()
                    ),
                    None,
                )])
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_graphql::parser::parse_query;
    use async_graphql::{EmptyMutation, EmptySubscription, Object, Schema};

    fn check(query: &str) -> Result<(), TooLarge> {
        check_expanded_size(&parse_query(query).expect("a valid document"))
    }

    /// `levels` fragments, each spreading the next `width` times; the last selects `leaf`.
    fn bomb(levels: usize, width: usize, leaf: &str) -> String {
        let mut q = String::from("query { ...F1 }");
        for n in 1..levels {
            q.push_str(&format!(" fragment F{n} on Query {{"));
            for _ in 0..width {
                q.push_str(&format!(" ...F{}", n + 1));
            }
            q.push('}');
        }
        q.push_str(&format!(" fragment F{levels} on Query {{ {leaf} }}"));
        q
    }

    #[test]
    fn counts_fields_as_expanded() {
        // 2^12 = 4096 fields of `a`, plus nothing else: within the limit.
        assert_eq!(check(&bomb(13, 2, "a")), Ok(()));
        // 2^13 = 8192: over it.
        assert_eq!(check(&bomb(14, 2, "a")), Err(TooLarge::Fields));
        // Thirty levels, a billion fields: refused at once, whatever the width.
        assert_eq!(check(&bomb(30, 2, "a")), Err(TooLarge::Fields));
        assert_eq!(check(&bomb(60, 10, "a { b }")), Err(TooLarge::Fields));
        // Fields below fields count too: 2500 × `a { b }` is 5000.
        assert_eq!(check(&format!("{{ {} }}", "a { b } ".repeat(2500))), Ok(()));
        assert_eq!(
            check(&format!("{{ {} c }}", "a { b } ".repeat(2500))),
            Err(TooLarge::Fields)
        );
    }

    #[test]
    fn unused_fragments_count_too() {
        let q = format!(
            "{{ a }} {}",
            bomb(30, 2, "a").replace("query { ...F1 }", "")
        );
        assert_eq!(check(&q), Err(TooLarge::Fields));
    }

    #[test]
    fn finds_cycles_and_deep_nesting() {
        assert!(matches!(
            check("{ ...A } fragment A on Query { ...B } fragment B on Query { a ...A }"),
            Err(TooLarge::Cycle(_))
        ));
        assert!(matches!(
            check("{ ...A } fragment A on Query { ...A }"),
            Err(TooLarge::Cycle(name)) if name == "A"
        ));
        // (The parser refuses deeply nested braces itself.) A chain of spreads nests too,
        // whichever fragment is counted first.
        assert_eq!(
            check(&bomb(MAX_NESTING + 2, 1, "a")),
            Err(TooLarge::Nesting)
        );
        assert_eq!(check(&bomb(MAX_NESTING - 2, 1, "a")), Ok(()));
        // An unknown fragment is left to validation.
        assert_eq!(check("{ ...Nowhere a }"), Ok(()));
    }

    struct Slow;

    #[Object]
    impl Slow {
        async fn slow(&self) -> bool {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            true
        }
    }

    #[tokio::test]
    async fn a_request_past_the_time_limit_is_stopped() {
        let schema = Schema::build(Slow, EmptyMutation, EmptySubscription)
            .extension(Limits {
                time: Duration::from_millis(50),
            })
            .finish();
        let response = tokio::time::timeout(Duration::from_secs(20), schema.execute("{ slow }"))
            .await
            .expect("stopped by the limit, long before this");
        assert_eq!(
            response.errors[0].message,
            "The request took longer than 50 ms and was stopped"
        );
    }

    #[tokio::test]
    async fn a_fragment_bomb_is_refused_before_validation() {
        let schema = Schema::build(Slow, EmptyMutation, EmptySubscription)
            .extension(Limits::default())
            .finish();
        let response = schema.execute(bomb(30, 2, "slow")).await;
        assert_eq!(response.errors[0].message, TooLarge::Fields.to_string());
    }
}
