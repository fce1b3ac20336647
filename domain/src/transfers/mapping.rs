//! Which column of a file fills which field: the fields each kind of import takes, the header
//! synonyms that guess a mapping (compared without case, spaces, underscores or punctuation:
//! "E-mail", "email_address" and "Email Address" are one), the CRMs whose exports we recognise
//! by their headers, and the checks of a mapping a client edits.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::{Error, FieldError, Result};

/// What an import creates or updates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entity {
    Contacts,
    Accounts,
    Deals,
}

impl Entity {
    pub const fn as_str(self) -> &'static str {
        match self {
            Entity::Contacts => "CONTACTS",
            Entity::Accounts => "ACCOUNTS",
            Entity::Deals => "DEALS",
        }
    }

    pub fn parse(s: &str) -> Option<Entity> {
        [Entity::Contacts, Entity::Accounts, Entity::Deals]
            .into_iter()
            .find(|e| e.as_str() == s)
    }

    /// The fields a column may fill, with the header names that guess each (normalised by
    /// [`norm`]); the first column whose header matches a field takes it.
    pub fn fields(self) -> &'static [(&'static str, &'static [&'static str])] {
        match self {
            Entity::Contacts => CONTACT_FIELDS,
            Entity::Accounts => ACCOUNT_FIELDS,
            Entity::Deals => DEAL_FIELDS,
        }
    }

    fn field_names(self) -> Vec<&'static str> {
        self.fields().iter().map(|(f, _)| *f).collect()
    }
}

const CONTACT_FIELDS: &[(&str, &[&str])] = &[
    (
        "email",
        &[
            "email",
            "emailaddress",
            "primaryemail",
            "workemail",
            "businessemail",
            "mail",
        ],
    ),
    (
        "firstName",
        &["firstname", "first", "givenname", "forename"],
    ),
    ("lastName", &["lastname", "last", "surname", "familyname"]),
    ("title", &["title", "jobtitle", "position", "role"]),
    (
        "phone",
        &[
            "phone",
            "phonenumber",
            "mobile",
            "mobilephone",
            "mobilephonenumber",
            "telephone",
            "businessphone",
            "workphone",
        ],
    ),
    (
        "github",
        &["github", "githubusername", "githubhandle", "githublogin"],
    ),
    ("twitter", &["twitter", "twitterhandle", "twitterusername"]),
    (
        "linkedIn",
        &[
            "linkedin",
            "linkedinurl",
            "linkedinprofile",
            "linkedinprofileurl",
        ],
    ),
    ("city", &["city", "mailingcity", "town"]),
    ("country", &["country", "mailingcountry", "countryregion"]),
    ("notes", &["notes", "note", "description"]),
    ("tags", &["tags", "tag", "labels"]),
    (
        "accountName",
        &[
            "company",
            "companyname",
            "account",
            "accountname",
            "organization",
            "organisation",
            "associatedcompany",
            "employer",
        ],
    ),
    (
        "accountDomain",
        &[
            "companydomain",
            "companydomainname",
            "domain",
            "website",
            "companywebsite",
            "websiteurl",
        ],
    ),
];

const ACCOUNT_FIELDS: &[(&str, &[&str])] = &[
    (
        "name",
        &[
            "name",
            "companyname",
            "accountname",
            "company",
            "organization",
            "organisation",
        ],
    ),
    (
        "domain",
        &["domain", "companydomain", "companydomainname", "domainname"],
    ),
    (
        "website",
        &["website", "websiteurl", "url", "companywebsite", "homepage"],
    ),
    ("industry", &["industry"]),
    ("size", &["size", "companysize"]),
    (
        "githubOrg",
        &[
            "githuborg",
            "github",
            "githuborganization",
            "githuborganisation",
        ],
    ),
    ("city", &["city", "billingcity"]),
    ("country", &["country", "billingcountry", "countryregion"]),
    ("description", &["description", "about"]),
    ("tags", &["tags", "tag", "labels"]),
];

const DEAL_FIELDS: &[(&str, &[&str])] = &[
    (
        "title",
        &[
            "dealname",
            "opportunityname",
            "name",
            "title",
            "deal",
            "opportunity",
        ],
    ),
    ("amount", &["amount", "value", "dealvalue", "dealamount"]),
    (
        "currency",
        &[
            "currency",
            "currencycode",
            "dealcurrencycode",
            "opportunitycurrency",
        ],
    ),
    ("stage", &["stage", "dealstage", "stagename"]),
    (
        "probability",
        &["probability", "probabilitypercent", "dealprobability"],
    ),
    (
        "expectedCloseDate",
        &["closedate", "expectedclosedate", "closingdate"],
    ),
    ("description", &["description", "dealdescription"]),
    ("tags", &["tags", "tag", "labels"]),
    (
        "accountName",
        &[
            "accountname",
            "companyname",
            "company",
            "associatedcompany",
            "account",
        ],
    ),
    (
        "accountDomain",
        &["companydomain", "companydomainname", "domain", "website"],
    ),
    (
        "contactEmail",
        &["contactemail", "email", "associatedcontactemail"],
    ),
    ("recordId", &["recordid", "opportunityid", "dealid", "id"]),
];

/// Where a file comes from, as its headers tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Generic,
    HubSpot,
    Salesforce,
}

impl Source {
    pub const fn as_str(self) -> &'static str {
        match self {
            Source::Generic => "GENERIC",
            Source::HubSpot => "HUBSPOT",
            Source::Salesforce => "SALESFORCE",
        }
    }

    pub fn parse(s: &str) -> Source {
        match s {
            "HUBSPOT" => Source::HubSpot,
            "SALESFORCE" => Source::Salesforce,
            _ => Source::Generic,
        }
    }

    /// The CRM's deal stages → ours (the connectors' default stage maps).
    pub fn stages(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Source::HubSpot => crate::crm::deals::HUBSPOT_STAGES,
            Source::Salesforce => crate::crm::deals::SALESFORCE_STAGES,
            Source::Generic => &[],
        }
    }

    /// The prefix of a record id's key (`hubspot:123`).
    pub fn key_prefix(self) -> &'static str {
        match self {
            Source::HubSpot => "hubspot",
            Source::Salesforce => "salesforce",
            Source::Generic => "csv",
        }
    }
}

/// Headers only HubSpot's exports use.
const HUBSPOT_HEADERS: &[&str] = &[
    "recordid",
    "dealstage",
    "dealname",
    "companydomainname",
    "associatedcompany",
    "contactowner",
    "dealowner",
    "companyowner",
];
/// Headers only Salesforce's reports and exports use.
const SALESFORCE_HEADERS: &[&str] = &[
    "opportunityname",
    "opportunityid",
    "accountid",
    "contactid",
    "mailingcity",
    "mailingcountry",
    "billingcity",
    "billingcountry",
    "stagename",
    "opportunityowner",
    "accountowner",
];

/// Letters and digits, lower-cased: how headers are compared.
pub fn norm(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// The CRM whose export these headers are, if any.
pub fn detect_source(headers: &[String]) -> Source {
    let names: Vec<String> = headers.iter().map(|h| norm(h)).collect();
    let has = |list: &[&str]| names.iter().any(|n| list.contains(&n.as_str()));
    if has(HUBSPOT_HEADERS) {
        Source::HubSpot
    } else if has(SALESFORCE_HEADERS) {
        Source::Salesforce
    } else {
        Source::Generic
    }
}

/// One column's target: a field of the entity, or none (ignored).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnMapping {
    pub column: String,
    pub field: Option<String>,
}

/// The guessed mapping of `headers`, one entry per column in order; a field is taken by the
/// first column that names it.
pub fn guess(entity: Entity, headers: &[String]) -> Vec<ColumnMapping> {
    let mut taken: Vec<&str> = Vec::new();
    headers
        .iter()
        .map(|h| {
            let n = norm(h);
            let field = entity
                .fields()
                .iter()
                .find(|(f, names)| {
                    !taken.contains(f) && (names.contains(&n.as_str()) || norm(f) == n)
                })
                .map(|(f, _)| *f);
            if let Some(f) = field {
                taken.push(f);
            }
            ColumnMapping {
                column: h.clone(),
                field: field.map(str::to_owned),
            }
        })
        .collect()
}

/// Checks a mapping a client sent against the file's headers: every column named must be one
/// of the file's (once), every field one the entity takes (once). Columns not named are
/// ignored. Returns the mapping in the file's column order.
pub fn check(
    entity: Entity,
    headers: &[String],
    given: Vec<ColumnMapping>,
) -> Result<Vec<ColumnMapping>> {
    let mut errors = Vec::new();
    let known = entity.field_names();
    let mut fields: Vec<String> = Vec::new();
    let mut columns: Vec<String> = Vec::new();
    for (i, m) in given.iter().enumerate() {
        if !headers.contains(&m.column) {
            errors.push(FieldError::new(
                format!("mapping.{i}.column"),
                format!("the file has no column {:?}", m.column),
            ));
        } else if columns.contains(&m.column) {
            errors.push(FieldError::new(
                format!("mapping.{i}.column"),
                format!("the column {:?} is mapped twice", m.column),
            ));
        }
        columns.push(m.column.clone());
        if let Some(f) = &m.field {
            if !known.contains(&f.as_str()) {
                errors.push(FieldError::new(
                    format!("mapping.{i}.field"),
                    format!(
                        "unknown field {f:?} for {}; one of {}",
                        entity.as_str(),
                        known.join(", ")
                    ),
                ));
            } else if fields.contains(f) {
                errors.push(FieldError::new(
                    format!("mapping.{i}.field"),
                    format!("the field {f:?} is filled by two columns"),
                ));
            }
            fields.push(f.clone());
        }
    }
    if !errors.is_empty() {
        return Err(Error::Validation(errors));
    }
    Ok(headers
        .iter()
        .map(|h| ColumnMapping {
            column: h.clone(),
            field: given
                .iter()
                .find(|m| &m.column == h)
                .and_then(|m| m.field.clone()),
        })
        .collect())
}

/// A mapping as stored (a JSON array).
pub fn to_value(mapping: &[ColumnMapping]) -> Value {
    json!(mapping)
}

/// A stored mapping.
pub fn from_value(v: &Value) -> Vec<ColumnMapping> {
    serde_json::from_value(v.clone()).unwrap_or_default()
}

/// For each field, the index of the column that fills it.
pub fn columns_by_field(mapping: &[ColumnMapping]) -> Vec<(String, usize)> {
    mapping
        .iter()
        .enumerate()
        .filter_map(|(i, m)| m.field.clone().map(|f| (f, i)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn synonyms_guess_fields_whatever_the_spelling() {
        let m = guess(
            Entity::Contacts,
            &h(&[
                "E-mail",
                "first_name",
                "Last Name",
                "Company Domain",
                "Shoe size",
            ]),
        );
        let fields: Vec<Option<&str>> = m.iter().map(|c| c.field.as_deref()).collect();
        assert_eq!(
            fields,
            [
                Some("email"),
                Some("firstName"),
                Some("lastName"),
                Some("accountDomain"),
                None
            ]
        );
    }

    #[test]
    fn crm_exports_are_recognised() {
        assert_eq!(
            detect_source(&h(&["Record ID", "Deal Name", "Deal Stage"])),
            Source::HubSpot
        );
        assert_eq!(
            detect_source(&h(&["Opportunity Name", "Stage", "Account Name"])),
            Source::Salesforce
        );
        assert_eq!(detect_source(&h(&["Email"])), Source::Generic);
    }

    #[test]
    fn unknown_fields_and_columns_are_named() {
        let Err(Error::Validation(e)) = check(
            Entity::Contacts,
            &h(&["Email"]),
            vec![
                ColumnMapping {
                    column: "Email".into(),
                    field: Some("shoeSize".into()),
                },
                ColumnMapping {
                    column: "Nope".into(),
                    field: None,
                },
            ],
        ) else {
            panic!("refused");
        };
        assert_eq!(e[0].field, "mapping.0.field");
        assert!(e[0].message.contains("shoeSize"));
        assert_eq!(e[1].field, "mapping.1.column");
    }
}
