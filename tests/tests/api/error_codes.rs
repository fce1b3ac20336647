//! The error codes are one documented list: ARCHITECTURE.md's table equals `domain::Code`, and
//! every code the domain's errors and the REST layer's statuses produce is in it.

use domain::Code;

fn documented() -> Vec<(String, u16)> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../ARCHITECTURE.md");
    let doc = std::fs::read_to_string(path).unwrap();
    let start = doc
        .find("<!-- error-codes:start -->")
        .expect("the table's start marker");
    let end = doc
        .find("<!-- error-codes:end -->")
        .expect("the table's end marker");
    doc[start..end]
        .lines()
        .filter(|l| l.starts_with("| `"))
        .map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            (
                cells[1].trim_matches('`').to_owned(),
                cells[2].parse().expect("an HTTP status"),
            )
        })
        .collect()
}

#[test]
fn the_documented_table_is_the_list_of_codes() {
    let listed: Vec<(String, u16)> = Code::ALL
        .iter()
        .map(|c| (c.as_str().to_owned(), c.http_status()))
        .collect();
    assert_eq!(documented(), listed);
}

#[test]
fn every_error_and_status_maps_to_a_listed_code() {
    let errors = [
        domain::Error::NotFound { entity: "X" },
        domain::Error::Conflict {
            field: "f".into(),
            message: "m".into(),
        },
        domain::Error::invalid("f", "m"),
        domain::Error::Unauthenticated("m".into()),
        domain::Error::Forbidden("m".into()),
        domain::Error::RateLimited {
            retry_after_secs: 1,
        },
        domain::Error::PlanLimit("m".into()),
        domain::Error::Database(sea_orm::DbErr::Custom("x".into())),
        domain::Error::Internal("x".into()),
    ];
    for e in &errors {
        assert!(Code::ALL.contains(&e.kind()), "{e:?}");
        assert_eq!(e.code(), e.kind().as_str());
    }
    for status in 400..600u16 {
        let s = http::StatusCode::from_u16(status).unwrap();
        let code = server::http::error::ApiError::code_for_status(s);
        assert!(Code::ALL.contains(&code), "{status} -> {code}");
    }
}
