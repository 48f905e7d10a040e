//! Keyset pages (see [`Page`]): what a page adds to a list's query, and its rows put back in the
//! list's order; and how many rows a whole list holds.

use super::backend::{Backend, Value};
use super::log::push_delivery_filter;
use super::webhooks::push_webhook_filter;
use super::{Listing, Order, Page, Result, SqlStore};
use crate::domain::ids::ChannelId;
use sqlx::{ColumnIndex, Encode, Executor, QueryBuilder, Type};

/// Pushes the page's bounds on `column` (the list's row id), its order and its limit:
/// ` AND … ORDER BY … LIMIT …`, after a `WHERE` that holds at least one condition.
pub(super) fn push_page<B: Backend>(qb: &mut QueryBuilder<'_, B>, column: &str, page: Page)
where
    i64: Value<B>,
{
    let (past, short_of) = match page.order {
        Order::Ascending => (">", "<"),
        Order::Descending => ("<", ">"),
    };
    if let Some(after) = page.after {
        qb.push(format!(" AND {column} {past} ")).push_bind(after);
    }
    if let Some(before) = page.before {
        qb.push(format!(" AND {column} {short_of} "))
            .push_bind(before);
    }
    // A page from the end reads the list backwards, and `in_order` turns it round.
    let ascending = (page.order == Order::Ascending) != page.from_end;
    let direction = if ascending { "ASC" } else { "DESC" };
    qb.push(format!(" ORDER BY {column} {direction} LIMIT "))
        .push_bind(page.limit);
}

/// The rows of a page read with [`push_page`], in the list's order.
pub(super) fn in_order<T>(mut rows: Vec<T>, page: Page) -> Vec<T> {
    if page.from_end {
        rows.reverse();
    }
    rows
}

impl<B: Backend> SqlStore<B>
where
    for<'c> &'c mut B::Connection: Executor<'c, Database = B>,
    for<'q> &'q str: Type<B> + Encode<'q, B> + ColumnIndex<B::Row>,
    for<'q> Option<&'q str>: Encode<'q, B>,
    i64: Value<B>,
    Option<i64>: Value<B>,
    String: Value<B>,
    Option<String>: Value<B>,
    bool: Value<B>,
    Option<f64>: Value<B>,
    usize: ColumnIndex<B::Row>,
{
    /// How many rows `listing` holds, unpaged (a connection's `totalCount`).
    pub(super) async fn count(&self, channel_id: ChannelId, listing: &Listing) -> Result<i64> {
        let mut qb = QueryBuilder::<B>::new("SELECT COUNT(*) FROM ");
        let mut all_of = |table: &str| {
            qb.push(table)
                .push(" WHERE channel_id = ")
                .push_bind(channel_id.get());
        };
        match listing {
            Listing::Users => all_of("users"),
            Listing::Videos => all_of("videos"),
            Listing::Collections => all_of("collections"),
            Listing::Groups => all_of("user_groups"),
            Listing::Webhooks(filter) => {
                qb.push("webhooks");
                push_webhook_filter(&mut qb, channel_id, filter);
            }
            Listing::Deliveries(webhook_id, filter) => {
                qb.push("deliveries d");
                push_delivery_filter(&mut qb, channel_id, *webhook_id, filter);
            }
        }
        let (n,) = B::shorten_as(qb.build_query_as::<(i64,)>())
            .fetch_one(&self.reader)
            .await?;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::Sqlite;

    fn sql(page: Page) -> String {
        let mut qb = QueryBuilder::<Sqlite>::new("SELECT id FROM t WHERE x = 1");
        push_page(&mut qb, "id", page);
        qb.sql().to_owned()
    }

    #[test]
    fn pages_read_from_either_end_of_either_order() {
        let first = Page::first(3);
        assert_eq!(
            sql(first),
            "SELECT id FROM t WHERE x = 1 ORDER BY id ASC LIMIT ?"
        );
        let last_before = Page {
            before: Some(9),
            from_end: true,
            ..first
        };
        assert_eq!(
            sql(last_before),
            "SELECT id FROM t WHERE x = 1 AND id < ? ORDER BY id DESC LIMIT ?"
        );
        let newest_after = Page {
            after: Some(9),
            order: Order::Descending,
            ..first
        };
        assert_eq!(
            sql(newest_after),
            "SELECT id FROM t WHERE x = 1 AND id < ? ORDER BY id DESC LIMIT ?"
        );
        let oldest_of_newest_first = Page {
            order: Order::Descending,
            from_end: true,
            ..first
        };
        assert_eq!(
            sql(oldest_of_newest_first),
            "SELECT id FROM t WHERE x = 1 ORDER BY id ASC LIMIT ?"
        );
        assert_eq!(in_order(vec![3, 2, 1], last_before), vec![1, 2, 3]);
        assert_eq!(in_order(vec![3, 2, 1], first), vec![3, 2, 1]);
    }
}
