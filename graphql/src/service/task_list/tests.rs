//! Unit tests for `task_list`: pure functions only, no database.

use super::*;

fn message(result: ApiResult<impl std::fmt::Debug>) -> String {
    result.expect_err("should be rejected").to_string()
}

#[test]
fn paging_arguments_are_validated_and_name_the_argument() {
    assert!(
        message(page_request(Some(0), None, None, None))
            .starts_with("first must be between 1 and 100")
    );
    assert!(message(page_request(Some(101), None, None, None)).starts_with("first must"));
    assert!(message(page_request(None, None, Some(-1), None)).starts_with("last must"));
    assert!(message(page_request(Some(1), None, Some(1), None)).starts_with("first and last"));
    assert!(
        message(page_request(None, Some("c".into()), Some(5), None)).starts_with("after cannot")
    );
    assert!(
        message(page_request(Some(5), None, None, Some("c".into()))).starts_with("before cannot")
    );
    assert!(matches!(
        page_request(None, None, None, None),
        Ok(PageRequest::Forward {
            first: None,
            after: None
        })
    ));
    assert!(matches!(
        page_request(None, None, None, Some("c".into())),
        Ok(PageRequest::Backward { .. })
    ));
}

#[test]
fn the_sort_defaults_depend_on_search_and_bad_sorts_name_sort() {
    let created = SortKey {
        field: SortField::CreatedAt,
        direction: SortDirection::Desc,
    };
    assert_eq!(effective_sort(&[], false).expect("ok"), [created]);
    assert_eq!(
        effective_sort(&[], true).expect("ok")[0].field,
        SortField::Relevance
    );
    let relevance = SortKey {
        field: SortField::Relevance,
        direction: SortDirection::Desc,
    };
    assert!(message(effective_sort(&[relevance], false)).starts_with("sort[0]: RELEVANCE"));
    assert!(message(effective_sort(&[created, created], false)).starts_with("sort[1]:"));
}
