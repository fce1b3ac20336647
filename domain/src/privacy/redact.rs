//! Removing a person's values from text and JSON that other rows keep: each occurrence of one
//! of their identifiers (whole words, case-insensitive) becomes [`ERASED_MARK`], and in a row
//! that is about them, keys that hold personal values lose them.

use sea_orm::sea_query::{Expr, ExprTrait, Func, LikeExpr};
use sea_orm::{
    ActiveModelBehavior, ActiveModelTrait, Condition, ConnectionTrait, EntityTrait,
    IntoActiveModel, QueryFilter,
};
use serde_json::Value;

use crate::Result;

/// What an erased value is replaced with.
pub const ERASED_MARK: &str = "[erased]";

/// Keys whose values name a person wherever they appear in a row about that person (signal
/// metadata, event payloads): emails, names, logins, handles, avatar and profile URLs.
pub const PERSONAL_KEYS: &[&str] = &[
    "email",
    "emails",
    "name",
    "fullname",
    "full_name",
    "firstname",
    "first_name",
    "lastname",
    "last_name",
    "displayname",
    "display_name",
    "login",
    "username",
    "user_name",
    "handle",
    "nickname",
    "github",
    "twitter",
    "linkedin",
    "linked_in",
    "phone",
    "avatar",
    "avatar_url",
    "avatarurl",
    "gravatar_id",
    "html_url",
    "htmlurl",
    "profile_url",
    "profileurl",
    "url_profile",
    "blog",
    "bio",
    "ip",
    "user_agent",
    "useragent",
    "author",
    "user",
    "actor",
    "sender",
    "company_email",
    "location",
];

/// The values to erase: non-empty, lower case, longest first (a full name before its parts).
pub fn needles(values: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut out: Vec<String> = values
        .into_iter()
        .map(|v| v.trim().to_lowercase())
        .filter(|v| v.chars().count() >= 2)
        .collect();
    out.sort_by(|a, b| b.len().cmp(&a.len()).then(a.cmp(b)));
    out.dedup();
    out
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// `s` with every whole-word, case-insensitive occurrence of a needle replaced; `None` when
/// nothing matched.
pub fn text(s: &str, needles: &[String]) -> Option<String> {
    let mut cur = s.to_owned();
    let mut changed = false;
    for n in needles {
        let lower = cur.to_lowercase();
        // Lower-casing may change byte lengths outside ASCII; then match the text as it is.
        let hay = if lower.len() == cur.len() {
            lower
        } else {
            cur.clone()
        };
        let mut out = String::with_capacity(cur.len());
        let mut last = 0;
        let mut from = 0;
        while let Some(pos) = hay[from..].find(n.as_str()) {
            let start = from + pos;
            let end = start + n.len();
            let before = cur[..start].chars().next_back();
            let after = cur[end..].chars().next();
            if before.is_none_or(|c| !is_word(c)) && after.is_none_or(|c| !is_word(c)) {
                out.push_str(&cur[last..start]);
                out.push_str(ERASED_MARK);
                last = end;
                changed = true;
            }
            from = end;
            if from >= hay.len() {
                break;
            }
        }
        if last > 0 {
            out.push_str(&cur[last..]);
            cur = out;
        }
    }
    changed.then_some(cur)
}

/// Redacts every string of `v` (and object keys' values when `about_them` and the key is a
/// [`PERSONAL_KEYS`] one: the value is dropped). Returns whether anything changed.
pub fn json(v: &mut Value, needles: &[String], about_them: bool) -> bool {
    match v {
        Value::String(s) => match text(s, needles) {
            Some(t) => {
                *s = t;
                true
            }
            None => false,
        },
        Value::Array(a) => a
            .iter_mut()
            .fold(false, |acc, x| json(x, needles, about_them) | acc),
        Value::Object(o) => {
            let mut changed = false;
            if about_them {
                let personal: Vec<String> = o
                    .keys()
                    .filter(|k| {
                        let k = k.to_lowercase();
                        PERSONAL_KEYS.contains(&k.as_str())
                    })
                    .cloned()
                    .collect();
                for k in personal {
                    if o.get(&k).is_some_and(|x| !x.is_null()) {
                        o.insert(k, Value::Null);
                        changed = true;
                    }
                }
            }
            for x in o.values_mut() {
                changed |= json(x, needles, about_them);
            }
            changed
        }
        _ => false,
    }
}

/// A condition matching rows where any of `columns` (cast to text, lower case) contains any of
/// `find`.
pub fn mentions<C: sea_orm::ColumnTrait>(columns: &[C], find: &[String]) -> Condition {
    let mut any = Condition::any();
    for c in columns {
        for n in find {
            any = any.add(
                Expr::expr(Func::lower(Expr::col(*c).cast_as("text")))
                    .like(LikeExpr::new(crate::crm::like_pattern(n)).escape('\\')),
            );
        }
    }
    any
}

/// Loads the rows of `E` matching `scope` that mention any of `find` in `columns`, applies
/// `patch` to each and writes back those it changed. Returns how many changed.
pub async fn sweep<E, F>(
    db: &impl ConnectionTrait,
    scope: Condition,
    columns: &[E::Column],
    find: &[String],
    mut patch: F,
) -> Result<u64>
where
    E: EntityTrait,
    E::Model: IntoActiveModel<E::ActiveModel> + Sync,
    E::ActiveModel: ActiveModelTrait<Entity = E> + ActiveModelBehavior + Send,
    F: FnMut(&mut E::Model) -> bool,
{
    if find.is_empty() {
        return Ok(0);
    }
    let rows = E::find()
        .filter(scope)
        .filter(mentions(columns, find))
        .all(db)
        .await?;
    let mut n = 0;
    for mut m in rows {
        if patch(&mut m) {
            m.into_active_model().reset_all().update(db).await?;
            n += 1;
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn whole_words_only() {
        let n = needles(["Ann".to_owned(), "ann@x.io".to_owned()]);
        assert_eq!(
            text("Call Ann (ann@x.io) about the Annual plan", &n).as_deref(),
            Some("Call [erased] ([erased]) about the Annual plan")
        );
        assert_eq!(text("Annual", &n), None);
    }

    #[test]
    fn json_drops_personal_keys_of_rows_about_them() {
        let n = needles(["octo".to_owned()]);
        let mut v = json!({"login": "someone", "repo": "octo/x", "title": "by octo"});
        assert!(json(&mut v, &n, true));
        assert_eq!(
            v,
            json!({"login": null, "repo": "[erased]/x", "title": "by [erased]"})
        );
        let mut w = json!({"login": "someone"});
        assert!(!json(&mut w, &n, false));
    }
}
