//! Which format a file is in, told from its extension and header.

use std::fmt;
use std::io::Read;
use std::path::Path;

use super::table::Table;
use super::{ImportError, ImportKind, Source, patron, shopify};

/// The formats `patron import` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One JSON object per line, shaped as the API takes it.
    PatronNdjson,
    /// CSV whose columns are the API's field names (`customer.email`, `lines.quantity` for nested ones).
    PatronCsv,
    /// Shopify's customer export (Customers → Export).
    ShopifyCustomers,
    /// Shopify's order export (Orders → Export): one row per line item.
    ShopifyOrders,
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::PatronNdjson => "Patron NDJSON",
            Self::PatronCsv => "Patron CSV",
            Self::ShopifyCustomers => "Shopify customer export (CSV)",
            Self::ShopifyOrders => "Shopify order export (CSV)",
        })
    }
}

impl Format {
    /// Tells the format of a file of `kind` from its path and its first bytes.
    pub(crate) fn detect(kind: ImportKind, path: &Path, head: &[u8]) -> Result<Self, ImportError> {
        let extension = path.extension().and_then(|e| e.to_str()).map(str::to_lowercase);
        let text = String::from_utf8_lossy(head);
        let text = text.trim_start_matches('\u{feff}').trim_start();
        if matches!(extension.as_deref(), Some("ndjson" | "jsonl")) || text.starts_with('{') {
            return Ok(Self::PatronNdjson);
        }
        let header_line = text.lines().next().unwrap_or_default();
        let table = Table::open(header_line.as_bytes())?;
        let columns = &table.columns;
        let export = if shopify::is_order_export(columns) {
            Some((Self::ShopifyOrders, ImportKind::Orders))
        } else if shopify::is_customer_export(columns) {
            Some((Self::ShopifyCustomers, ImportKind::Customers))
        } else {
            None
        };
        match export {
            Some((format, of)) if of == kind => Ok(format),
            Some((format, of)) => Err(ImportError::UnknownFormat(format!(
                "{} looks like a {format}; import it with `patron import {of}`",
                path.display()
            ))),
            None => {
                patron::check_columns(kind, columns)?;
                Ok(Self::PatronCsv)
            }
        }
    }

    /// The records of a file in this format.
    pub(crate) fn source<R: Read + Send + 'static>(
        self,
        kind: ImportKind,
        reader: R,
        shop_currency: &str,
    ) -> Result<Source, ImportError> {
        let currency = shop_currency.to_owned();
        Ok(match self {
            Self::PatronNdjson => patron::ndjson(kind, reader, currency),
            Self::PatronCsv => patron::csv(kind, Table::open(reader)?, currency),
            Self::ShopifyCustomers => shopify::customers(Table::open(reader)?),
            Self::ShopifyOrders => shopify::orders(Table::open(reader)?, currency),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn detect(kind: ImportKind, name: &str, head: &str) -> Result<Format, ImportError> {
        Format::detect(kind, Path::new(name), head.as_bytes())
    }

    #[test]
    fn tells_formats_apart() {
        use ImportKind::*;
        assert_eq!(detect(Customers, "c.ndjson", "").ok(), Some(Format::PatronNdjson));
        assert_eq!(detect(Orders, "o.txt", "{\"id\":\"1\"}\n").ok(), Some(Format::PatronNdjson));
        assert_eq!(detect(Customers, "c.csv", "external_id,email,first_name\n").ok(), Some(Format::PatronCsv));
        assert_eq!(
            detect(Customers, "c.csv", "Customer ID,First Name,Last Name,Email,Accepts Email Marketing\n").ok(),
            Some(Format::ShopifyCustomers)
        );
        assert_eq!(
            detect(Customers, "c.csv", "First Name,Last Name,Email,Company,Accepts Marketing,Total Spent\n").ok(),
            Some(Format::ShopifyCustomers)
        );
        assert_eq!(
            detect(Orders, "o.csv", "Name,Email,Financial Status,Lineitem quantity,Lineitem name\n").ok(),
            Some(Format::ShopifyOrders)
        );
    }

    #[test]
    fn refuses_a_file_of_another_kind_or_unknown_columns() {
        let wrong = detect(ImportKind::Customers, "o.csv", "Name,Email,Lineitem quantity,Lineitem name\n");
        assert!(wrong.is_err_and(|e| e.to_string().contains("patron import orders")));
        let unknown = detect(ImportKind::Products, "p.csv", "id,title,price,colour\n");
        assert!(unknown.is_err_and(|e| e.to_string().contains("colour")));
    }
}
