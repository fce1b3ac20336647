//! One data row as the CRM's inputs: each mapped cell read into its field (empty cells leave a
//! field alone), numbers, dates and stages parsed, and the keys a re-import finds the row's
//! object by. What the CRM checks (lengths, emails, domains, sizes, stages) is checked by the
//! CRM's own validation ([`crate::crm::contacts::validate_new`] and its siblings), not here.

use chrono::NaiveDate;

use super::csvfile::Row;
use super::mapping::{ColumnMapping, Entity, Source, columns_by_field};
use crate::FieldError;
use crate::crm::{accounts, contacts, deals};

/// Which account a contact or deal row names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountRef {
    /// Normalised (`acme.io`).
    pub domain: Option<String>,
    pub name: Option<String>,
}

impl AccountRef {
    pub fn is_empty(&self) -> bool {
        self.domain.is_none() && self.name.is_none()
    }
}

/// A row read for its entity.
#[derive(Debug, Clone)]
pub enum Item {
    Contact {
        input: contacts::Input,
        /// The normalised email (the re-import key).
        email: String,
        account: AccountRef,
    },
    Account {
        create: accounts::CreateInput,
        update: accounts::UpdateInput,
        /// `domain:<normalised domain>`, else `name:<lower-cased name>` (the re-import key).
        key: String,
    },
    Deal {
        input: deals::Input,
        /// `<source>:<record id>` when the file has one.
        record: Option<String>,
        /// The lower-cased title (with the account, the re-import key without a record id).
        title: String,
        account: AccountRef,
        contact_email: Option<String>,
    },
}

/// How a file's rows are read: the entity, the mapping's columns by field, the source.
pub struct Reader {
    entity: Entity,
    source: Source,
    columns: Vec<(String, usize)>,
}

/// The host of a website or domain (`https://www.acme.io/about` → `acme.io`), if it looks like
/// one.
pub fn host_of(s: &str) -> Option<String> {
    let s = s.trim().to_lowercase();
    let s = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .unwrap_or(&s);
    let host = s.split(['/', '?', '#']).next().unwrap_or_default();
    let host = host.strip_prefix("www.").unwrap_or(host);
    (host.contains('.') && !host.contains(char::is_whitespace)).then(|| host.to_owned())
}

/// A number as files write it: `1234.5`, `1,234.50`, `1.234,50`, `$ 1 234`, `12,5`.
pub fn number(s: &str) -> Option<f64> {
    let t: String = s
        .chars()
        .filter(|c| c.is_ascii_digit() || matches!(c, '.' | ',' | '-'))
        .collect();
    if t.is_empty() || !t.chars().any(|c| c.is_ascii_digit()) {
        return None;
    }
    let t = match (t.rfind('.'), t.rfind(',')) {
        (Some(d), Some(c)) if c > d => t.replace('.', "").replace(',', "."),
        (Some(_), Some(_)) => t.replace(',', ""),
        (None, Some(c)) if t.matches(',').count() == 1 && t.len() - c - 1 != 3 => {
            t.replace(',', ".")
        }
        (None, Some(_)) => t.replace(',', ""),
        _ => t,
    };
    t.parse().ok().filter(|v: &f64| v.is_finite())
}

/// A date as files write it: `2027-01-31`, `2027-01-31 00:00`, `2027-01-31T00:00:00Z`,
/// `01/31/2027` (US, as CRM exports write it), `31.01.2027`.
pub fn date(s: &str) -> Option<NaiveDate> {
    let s = s.trim();
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Some(t.date_naive());
    }
    let head = s.split([' ', 'T']).next().unwrap_or(s);
    ["%Y-%m-%d", "%m/%d/%Y", "%d.%m.%Y", "%Y/%m/%d"]
        .iter()
        .find_map(|f| NaiveDate::parse_from_str(head, f).ok())
}

fn tags(s: &str) -> Vec<String> {
    s.split([',', ';', '|'])
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect()
}

impl Reader {
    pub fn new(entity: Entity, source: Source, mapping: &[ColumnMapping]) -> Reader {
        Reader {
            entity,
            source,
            columns: columns_by_field(mapping),
        }
    }

    fn cell<'a>(&self, row: &'a Row, field: &str) -> Option<&'a str> {
        let (_, i) = self.columns.iter().find(|(f, _)| f == field)?;
        row.fields
            .get(*i)
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
    }

    fn text(&self, row: &Row, field: &str) -> Option<String> {
        self.cell(row, field).map(str::to_owned)
    }

    fn account_ref(&self, row: &Row, errors: &mut Vec<FieldError>) -> AccountRef {
        let domain = self.cell(row, "accountDomain").and_then(|d| {
            let host = host_of(d);
            if host.is_none() {
                errors.push(FieldError::new(
                    "accountDomain",
                    "must be a domain such as example.com",
                ));
            }
            host.map(|h| accounts::normalize_domain(&h))
        });
        AccountRef {
            domain,
            name: self.text(row, "accountName"),
        }
    }

    /// The row as its entity's input, or every problem found (fields named as the CRM names
    /// them).
    pub fn read(&self, row: &Row) -> Result<Item, Vec<FieldError>> {
        let mut errors = Vec::new();
        let item = match self.entity {
            Entity::Contacts => self.contact(row, &mut errors),
            Entity::Accounts => self.account(row, &mut errors),
            Entity::Deals => self.deal(row, &mut errors),
        };
        if errors.is_empty() {
            Ok(item)
        } else {
            Err(errors)
        }
    }

    fn contact(&self, row: &Row, errors: &mut Vec<FieldError>) -> Item {
        let t = |f: &str| self.text(row, f).map(Some);
        let input = contacts::Input {
            first_name: t("firstName"),
            last_name: t("lastName"),
            email: t("email"),
            title: t("title"),
            phone: t("phone"),
            github: t("github"),
            twitter: t("twitter"),
            linked_in: t("linkedIn"),
            city: t("city"),
            country: t("country"),
            notes: t("notes"),
            add_tags: self.cell(row, "tags").map(tags).unwrap_or_default(),
            ..Default::default()
        };
        let email = self
            .cell(row, "email")
            .map(contacts::normalize_email)
            .unwrap_or_default();
        if email.is_empty() {
            errors.push(FieldError::new(
                "email",
                "is required to import a contact (a re-import finds contacts by email)",
            ));
        }
        // The CRM's own checks, as a create would run them.
        if let Err(e) = contacts::validate_new(uuid::Uuid::nil(), input.clone()) {
            errors.extend(e);
        }
        let account = self.account_ref(row, errors);
        Item::Contact {
            input,
            email,
            account,
        }
    }

    fn account(&self, row: &Row, errors: &mut Vec<FieldError>) -> Item {
        let website = self.text(row, "website");
        let domain = self
            .text(row, "domain")
            .or_else(|| website.as_deref().and_then(host_of));
        let name = self.text(row, "name");
        let create = accounts::CreateInput {
            name: name.clone().unwrap_or_default(),
            domain: domain.clone(),
            industry: self.text(row, "industry"),
            size: self.text(row, "size").map(|s| s.to_uppercase()),
            website: website.clone(),
            github_org: self.text(row, "githubOrg"),
            city: self.text(row, "city"),
            country: self.text(row, "country"),
            description: self.text(row, "description"),
            custom_fields: None,
            tags: Vec::new(),
        };
        let s = |v: &Option<String>| v.clone().map(Some);
        let update = accounts::UpdateInput {
            name: name.clone(),
            domain: s(&domain),
            industry: s(&create.industry),
            size: s(&create.size),
            website: s(&website),
            github_org: s(&create.github_org),
            city: s(&create.city),
            country: s(&create.country),
            description: s(&create.description),
            add_tags: self.cell(row, "tags").map(tags).unwrap_or_default(),
            ..Default::default()
        };
        if let Err(e) = accounts::validate_new(uuid::Uuid::nil(), create.clone()) {
            errors.extend(e);
        }
        let normalized = domain.as_deref().map(accounts::normalize_domain);
        let key = normalized
            .clone()
            .map(|d| format!("domain:{d}"))
            .unwrap_or_else(|| format!("name:{}", name.unwrap_or_default().to_lowercase()));
        Item::Account {
            create: accounts::CreateInput {
                tags: update.add_tags.clone(),
                ..create
            },
            update,
            key,
        }
    }

    fn deal(&self, row: &Row, errors: &mut Vec<FieldError>) -> Item {
        let amount = self.cell(row, "amount").map(|a| {
            let n = number(a);
            if n.is_none() {
                errors.push(FieldError::new("amount", "must be a number"));
            }
            n
        });
        let probability = self.cell(row, "probability").map(|p| {
            let n = number(p).map(|v| v.round() as i64);
            match n.and_then(|v| i32::try_from(v).ok()) {
                Some(v) => Some(v),
                None => {
                    errors.push(FieldError::new("probability", "must be a number"));
                    None
                }
            }
        });
        let expected_close_date = self.cell(row, "expectedCloseDate").map(|d| {
            let parsed = date(d);
            if parsed.is_none() {
                errors.push(FieldError::new(
                    "expectedCloseDate",
                    "must be a date such as 2027-01-31",
                ));
            }
            parsed
        });
        let stage =
            self.cell(row, "stage")
                .map(|s| match deals::stage_of(s, self.source.stages()) {
                    Some(ours) => ours.to_owned(),
                    None => {
                        errors.push(FieldError::new(
                            "stage",
                            format!(
                                "unknown stage {s:?}; one of {} (or the CRM's default stages)",
                                deals::STAGES.join(", ")
                            ),
                        ));
                        s.to_owned()
                    }
                });
        let title = self.text(row, "title");
        let tags_given = self.cell(row, "tags").map(tags);
        let input = deals::Input {
            title: title.clone(),
            amount,
            currency: self.text(row, "currency"),
            stage,
            probability,
            expected_close_date,
            description: self.text(row, "description").map(Some),
            tags: tags_given,
            ..Default::default()
        };
        if title.is_none() {
            errors.push(FieldError::new("title", "must be 1 to 200 characters"));
        } else if let Err(e) = deals::validate_new(uuid::Uuid::nil(), None, input.clone()) {
            // Fields already reported as unreadable are not reported twice.
            let fresh: Vec<FieldError> = e
                .into_iter()
                .filter(|f| !errors.iter().any(|x| x.field == f.field))
                .collect();
            errors.extend(fresh);
        }
        let record = self
            .cell(row, "recordId")
            .map(|id| format!("{}:{id}", self.source.key_prefix()));
        let account = self.account_ref(row, errors);
        Item::Deal {
            input,
            record,
            title: title.unwrap_or_default().to_lowercase(),
            account,
            contact_email: self
                .cell(row, "contactEmail")
                .map(contacts::normalize_email),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_dates_and_hosts_read_as_files_write_them() {
        assert_eq!(number("1,234.50"), Some(1234.5));
        assert_eq!(number("1.234,50"), Some(1234.5));
        assert_eq!(number("$ 5000"), Some(5000.0));
        assert_eq!(number("12,5"), Some(12.5));
        assert_eq!(number("1,000"), Some(1000.0));
        assert_eq!(number("abc"), None);
        assert_eq!(
            date("2027-01-31 00:00"),
            NaiveDate::from_ymd_opt(2027, 1, 31)
        );
        assert_eq!(date("01/31/2027"), NaiveDate::from_ymd_opt(2027, 1, 31));
        assert_eq!(date("31.01.2027"), NaiveDate::from_ymd_opt(2027, 1, 31));
        assert_eq!(date("soon"), None);
        assert_eq!(
            host_of("https://www.Acme.io/about").as_deref(),
            Some("acme.io")
        );
        assert_eq!(host_of("acme"), None);
    }
}
