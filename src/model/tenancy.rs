//! Tenants, the apps that act in them, and the tokens apps hold.

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Tenant {
    pub id: i64,
    pub name: String,
    pub tenant_key: String,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct App {
    pub app_id: String,
    pub tenant_id: i64,
    pub secret_hash: String,
    pub scopes: Vec<String>,
    pub disabled: bool,
    pub created_at: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    Tenant,
    App,
    /// Acts for one person; issued by the CLI (facehub has no OAuth flow).
    User,
}

impl TokenKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenKind::Tenant => "tenant",
            TokenKind::App => "app",
            TokenKind::User => "user",
        }
    }

    pub fn parse(s: &str) -> Option<TokenKind> {
        match s {
            "tenant" => Some(TokenKind::Tenant),
            "app" => Some(TokenKind::App),
            "user" => Some(TokenKind::User),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    pub kind: TokenKind,
    pub app_id: String,
    pub tenant_id: i64,
    /// The person a user token acts for.
    pub person_id: Option<i64>,
    pub issued_at: i64,
    pub expires_at: i64,
}
