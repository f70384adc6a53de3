/// Everything that can go wrong in the store, in terms a caller can act on.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A fenced completion found another owner (or no owner) on the work: the lease expired
    /// and someone else took it over, so this worker's result must be dropped.
    #[error("the lease on this work is held by another worker")]
    LeaseLost,
    #[error("not found")]
    NotFound,
    /// The write would break a uniqueness rule (an email already in use).
    #[error("{0}")]
    Conflict(String),
    #[error("invalid database url `{0}`: expected sqlite://PATH or postgres://...")]
    InvalidUrl(String),
    #[error("invalid master key: {0}")]
    InvalidKey(String),
    #[error("stored secrets could not be decrypted: wrong master key?")]
    Decrypt,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("{0}")]
    Other(String),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

impl StoreError {
    /// Whether the database refused a text value it cannot hold: PostgreSQL's text types
    /// cannot contain the NUL character (SQLSTATE 22021, "invalid byte sequence"; 22P05,
    /// "untranslatable character"), whether the value is stored or only looked up. The value
    /// came from the caller, so this is the caller's error, not the server's; SQLite holds
    /// such text, and the API refuses NUL in JSON bodies before either engine sees it.
    pub fn is_unstorable_text(&self) -> bool {
        match self {
            StoreError::Database(sqlx::Error::Database(db)) => {
                matches!(db.code().as_deref(), Some("22021" | "22P05"))
            }
            _ => false,
        }
    }
}
