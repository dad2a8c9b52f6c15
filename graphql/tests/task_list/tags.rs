//! Tag matches: `any`, `all` and `none`, case-insensitive, with unknown names.

use super::*;

on_both_databases!(
    tag_matches_are_case_insensitive_and_unknown_names_behave_per_list,
    |t| {
        let db = &t.db;
        let mut seed = Seed::new(db, OWNER).await;
        seed.task(NewTask {
            tags: vec!["Work"],
            ..titled("a")
        })
        .await;
        seed.task(NewTask {
            tags: vec!["Work", "home"],
            ..titled("b")
        })
        .await;
        seed.task(NewTask {
            tags: vec!["home"],
            ..titled("c")
        })
        .await;
        seed.task(titled("d")).await;
        seed.task(NewTask {
            tags: vec!["URGENT", "Work"],
            ..titled("e")
        })
        .await;

        assert_eq!(
            matching(db, filtered(tags(&["WORK"], &[], &[]))).await,
            names(&["a", "b", "e"])
        );
        // Unknown names in `any` match nothing for that name.
        assert_eq!(
            matching(db, filtered(tags(&[" Home ", "nope"], &[], &[]))).await,
            names(&["b", "c"])
        );
        assert!(
            matching(db, filtered(tags(&["nope"], &[], &[])))
                .await
                .is_empty()
        );

        assert_eq!(
            matching(db, filtered(tags(&[], &["work", "HOME"], &[]))).await,
            names(&["b"])
        );
        // An unknown name in `all` means no task can have every tag.
        assert!(
            matching(db, filtered(tags(&[], &["work", "nope"], &[])))
                .await
                .is_empty()
        );

        assert_eq!(
            matching(db, filtered(tags(&[], &[], &["wOrK"]))).await,
            names(&["c", "d"])
        );
        assert_eq!(
            matching(db, filtered(tags(&[], &[], &["urgent", "HOME"]))).await,
            names(&["a", "d"])
        );
        assert_eq!(
            matching(db, filtered(tags(&["work"], &[], &["home"]))).await,
            names(&["a", "e"])
        );

        let nested = TaskFilterSpec {
            or: Some(vec![
                tags(&["urgent"], &[], &[]),
                tags(&[], &["home", "work"], &[]),
            ]),
            ..TaskFilterSpec::default()
        };
        assert_eq!(matching(db, filtered(nested)).await, names(&["b", "e"]));

        // An unknown name in `none` is most likely a typo: rejected, naming the path.
        let typo = TaskFilterSpec {
            or: Some(vec![tags(&[], &[], &["urgnt"])]),
            ..TaskFilterSpec::default()
        };
        let message = bad_input(list_tasks(db, &filtered(typo.clone())).await);
        assert_eq!(message, "filter.or[0].tags.none: unknown tag \"urgnt\"");
        assert!(
            bad_input(count_tasks(db, &filtered(typo)).await).starts_with("filter.or[0].tags.none")
        );
        let top = bad_input(list_tasks(db, &filtered(tags(&[], &[], &["nope"]))).await);
        assert!(top.starts_with("filter.tags.none: unknown tag"), "{top}");
    }
);
