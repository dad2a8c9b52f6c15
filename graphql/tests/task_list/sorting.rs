//! Every sort field in both directions, and multi-key sorts.

use super::*;

/// Five tasks with distinct titles, priorities and due dates (two without).
async fn seed_sort_fixture(db: &DatabaseConnection) -> HashMap<String, Uuid> {
    let mut seed = Seed::new(db, OWNER).await;
    let mut ids = HashMap::new();
    for new in [
        NewTask {
            priority: 2,
            due_at: days(3),
            ..titled("charlie")
        },
        NewTask {
            priority: 4,
            ..titled("Alpha")
        },
        NewTask {
            priority: 0,
            due_at: days(1),
            ..titled("bravo")
        },
        NewTask {
            priority: 2,
            due_at: days(2),
            ..titled("Delta")
        },
        NewTask {
            priority: 1,
            ..titled("echo")
        },
    ] {
        let title = new.title.clone();
        ids.insert(title, seed.task(new).await);
    }
    ids
}

/// `a` and `b` in id order (ascending or descending).
fn by_id<'s>(
    ids: &HashMap<String, Uuid>,
    a: &'s str,
    b: &'s str,
    direction: SortDirection,
) -> [&'s str; 2] {
    let ascending = if ids[a] < ids[b] { [a, b] } else { [b, a] };
    match direction {
        SortDirection::Asc => ascending,
        SortDirection::Desc => [ascending[1], ascending[0]],
    }
}

on_both_databases!(
    every_sort_field_orders_both_ways_with_due_less_tasks_last,
    |t| {
        use SortDirection::{Asc, Desc};
        let db = &t.db;
        let ids = seed_sort_fixture(db).await;
        let order = |field, direction| sorted(vec![key(field, direction)]);

        let created = ["charlie", "Alpha", "bravo", "Delta", "echo"];
        assert_eq!(titles(db, order(SortField::CreatedAt, Asc)).await, created);
        let newest_first: Vec<&str> = created.iter().rev().copied().collect();
        assert_eq!(
            titles(db, order(SortField::CreatedAt, Desc)).await,
            newest_first
        );
        assert_eq!(
            titles(db, query(OWNER)).await,
            newest_first,
            "default sort is CREATED_AT DESC"
        );
        assert_eq!(
            titles(db, order(SortField::UpdatedAt, Asc)).await,
            newest_first
        );
        assert_eq!(titles(db, order(SortField::UpdatedAt, Desc)).await, created);

        assert_eq!(
            titles(db, order(SortField::Title, Asc)).await,
            ["Alpha", "bravo", "charlie", "Delta", "echo"]
        );
        assert_eq!(
            titles(db, order(SortField::Title, Desc)).await,
            ["echo", "Delta", "charlie", "bravo", "Alpha"]
        );

        let [p1, p2] = by_id(&ids, "charlie", "Delta", Asc);
        assert_eq!(
            titles(db, order(SortField::Priority, Asc)).await,
            ["bravo", "echo", p1, p2, "Alpha"]
        );
        let [p1, p2] = by_id(&ids, "charlie", "Delta", Desc);
        assert_eq!(
            titles(db, order(SortField::Priority, Desc)).await,
            ["Alpha", p1, p2, "echo", "bravo"]
        );

        let [n1, n2] = by_id(&ids, "Alpha", "echo", Asc);
        assert_eq!(
            titles(db, order(SortField::DueAt, Asc)).await,
            ["bravo", "Delta", "charlie", n1, n2]
        );
        let [n1, n2] = by_id(&ids, "Alpha", "echo", Desc);
        assert_eq!(
            titles(db, order(SortField::DueAt, Desc)).await,
            ["charlie", "Delta", "bravo", n1, n2]
        );

        // Earlier keys win; later keys break their ties.
        let multi = sorted(vec![
            key(SortField::Priority, Desc),
            key(SortField::DueAt, Asc),
        ]);
        assert_eq!(
            titles(db, multi).await,
            ["Alpha", "Delta", "charlie", "echo", "bravo"]
        );
        let multi = sorted(vec![
            key(SortField::Priority, Asc),
            key(SortField::Title, Desc),
        ]);
        assert_eq!(
            titles(db, multi).await,
            ["bravo", "echo", "Delta", "charlie", "Alpha"]
        );
    }
);
