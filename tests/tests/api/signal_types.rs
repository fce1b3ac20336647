//! The signal-type vocabulary is one documented list: docs/design.md's table equals
//! `domain::signals::types` (types, meanings, aliases) and `domain::scoring::HALF_LIVES`.

use domain::scoring::HALF_LIVES;
use domain::signals::types::{ALIASES, VOCABULARY};

fn documented() -> Vec<(String, String, String, String)> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/design.md");
    let doc = std::fs::read_to_string(path).unwrap();
    let start = doc
        .find("<!-- signal-types:start -->")
        .expect("start marker");
    let end = doc.find("<!-- signal-types:end -->").expect("end marker");
    doc[start..end]
        .lines()
        .filter(|l| l.starts_with("| `"))
        .map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            (
                cells[1].trim_matches('`').to_owned(),
                cells[2].to_owned(),
                cells[3].to_owned(),
                cells[4].replace('`', ""),
            )
        })
        .collect()
}

#[test]
fn the_documented_table_is_the_vocabulary() {
    let listed: Vec<(String, String, String, String)> = VOCABULARY
        .iter()
        .map(|(t, meaning)| {
            let half_life = HALF_LIVES
                .iter()
                .find(|(h, _)| h == t)
                .map(|(_, d)| d.to_string())
                .unwrap_or_default();
            let aliases: Vec<&str> = ALIASES
                .iter()
                .filter(|(_, target)| target == t)
                .map(|(a, _)| *a)
                .collect();
            (
                (*t).to_owned(),
                half_life,
                (*meaning).to_owned(),
                aliases.join(", "),
            )
        })
        .collect();
    assert_eq!(documented(), listed);
}
