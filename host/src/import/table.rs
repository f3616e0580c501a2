//! A CSV file read row by row, with cells looked up by column name, and the rows of
//! one order gathered together (exports write an order as one row per line item).

use std::collections::HashMap;
use std::io::Read;
use std::iter::Peekable;
use std::sync::Arc;

use csv::StringRecord;

use super::ImportError;

/// The column names of a CSV file, looked up without regard to case.
#[derive(Debug)]
pub(crate) struct Columns {
    names: Vec<String>,
    index: HashMap<String, usize>,
}

impl Columns {
    fn new(header: &StringRecord) -> Self {
        let names: Vec<String> =
            header.iter().map(|name| name.trim_start_matches('\u{feff}').trim().to_owned()).collect();
        let mut index = HashMap::new();
        for (i, name) in names.iter().enumerate() {
            index.entry(name.to_lowercase()).or_insert(i);
        }
        Self { names, index }
    }

    pub(crate) fn has(&self, name: &str) -> bool {
        self.index.contains_key(&name.to_lowercase())
    }

    pub(crate) fn names(&self) -> &[String] {
        &self.names
    }

    /// The column named `name` (any case), looked up once for every row to use.
    pub(crate) fn column(&self, name: &'static str) -> Column {
        Column { name, at: self.index.get(&name.to_lowercase()).copied() }
    }

    /// The first column whose name contains `fragment` (any case).
    pub(crate) fn find_containing(&self, fragment: &str) -> Option<&str> {
        let fragment = fragment.to_lowercase();
        self.names.iter().find(|name| name.to_lowercase().contains(&fragment)).map(String::as_str)
    }
}

/// A column looked up in a file's header: its name, and where it is (`None` when the
/// file lacks it).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Column {
    pub(crate) name: &'static str,
    at: Option<usize>,
}

/// One data row and the line of the file it starts on (the header is line 1).
#[derive(Debug, Clone)]
pub(crate) struct Row {
    pub(crate) line: u64,
    columns: Arc<Columns>,
    record: StringRecord,
}

impl Row {
    /// The trimmed cell under `column`, or `None` when the column is missing or the cell
    /// is empty. A leading apostrophe, which spreadsheets add to keep digits as text
    /// (Shopify writes `'7210448301122`), is dropped.
    pub(crate) fn get(&self, column: &str) -> Option<&str> {
        self.cell(self.columns.index.get(&column.to_lowercase()).copied())
    }

    /// The cell under a column looked up before, as [`Row::get`] reads it.
    pub(crate) fn at(&self, column: Column) -> Option<&str> {
        self.cell(column.at)
    }

    fn cell(&self, at: Option<usize>) -> Option<&str> {
        let cell = self.record.get(at?)?.trim();
        let cell = cell.strip_prefix('\'').unwrap_or(cell).trim();
        (!cell.is_empty()).then_some(cell)
    }

    /// Whether the file has `column` (whatever this row's cell holds).
    pub(crate) fn has_column(&self, column: &str) -> bool {
        self.columns.has(column)
    }

    /// The non-empty cells with their column names.
    pub(crate) fn cells(&self) -> impl Iterator<Item = (&str, &str)> {
        self.columns
            .names
            .iter()
            .zip(self.record.iter())
            .map(|(name, cell)| (name.as_str(), cell.trim()))
            .filter(|(_, cell)| !cell.is_empty())
    }
}

/// A CSV file being read: its columns, then its rows.
pub(crate) struct Table<R> {
    pub(crate) columns: Arc<Columns>,
    records: csv::StringRecordsIntoIter<R>,
}

/// A row the CSV reader could not read (bad quoting, invalid UTF-8), kept apart from
/// fatal I/O errors so that one bad row does not stop an import.
#[derive(Debug)]
pub(crate) struct BadRow {
    pub(crate) line: u64,
    pub(crate) reason: String,
}

impl<R: Read> Table<R> {
    pub(crate) fn open(reader: R) -> Result<Self, ImportError> {
        let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(reader);
        let header = reader.headers().map_err(|e| ImportError::Unreadable(e.to_string()))?.clone();
        Ok(Self { columns: Arc::new(Columns::new(&header)), records: reader.into_records() })
    }
}

impl<R: Read> Iterator for Table<R> {
    type Item = Result<Result<Row, BadRow>, ImportError>;

    fn next(&mut self) -> Option<Self::Item> {
        let item = match self.records.next()? {
            Ok(record) => {
                let line = record.position().map_or(0, csv::Position::line);
                Ok(Ok(Row { line, columns: Arc::clone(&self.columns), record }))
            }
            Err(e) if e.is_io_error() => Err(ImportError::Unreadable(e.to_string())),
            Err(e) => {
                let line = e.position().map_or(0, csv::Position::line);
                Ok(Err(BadRow { line, reason: e.to_string() }))
            }
        };
        Some(item)
    }
}

/// Gathers consecutive rows that share a key (an order id) into one group. A row with an
/// empty key continues the group before it, as some exports leave the key off the
/// second and later line items of an order.
pub(crate) struct Grouped<I: Iterator> {
    rows: Peekable<I>,
    key: Column,
}

impl<I: Iterator> Grouped<I> {
    pub(crate) fn new(key: Column, rows: I) -> Self {
        Self { rows: rows.peekable(), key }
    }
}

impl<I> Iterator for Grouped<I>
where
    I: Iterator<Item = Result<Result<Row, BadRow>, ImportError>>,
{
    type Item = Result<Result<Vec<Row>, BadRow>, ImportError>;

    fn next(&mut self) -> Option<Self::Item> {
        let first = match self.rows.next()? {
            Ok(Ok(row)) => row,
            other => return Some(other.map(|r| r.map(|row| vec![row]))),
        };
        let key = first.at(self.key).map(str::to_owned);
        let mut group = vec![first];
        while let Some(Ok(Ok(next))) = self.rows.peek() {
            let next_key = next.at(self.key);
            if next_key.is_some() && next_key != key.as_deref() {
                break;
            }
            if let Some(Ok(Ok(row))) = self.rows.next() {
                group.push(row);
            }
        }
        Some(Ok(Ok(group)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn groups(csv: &str) -> Vec<Vec<u64>> {
        let table = Table::open(csv.as_bytes()).expect("header");
        Grouped::new(table.columns.column("Name"), table)
            .map(|g| g.expect("io").expect("row").iter().map(|r| r.line).collect())
            .collect()
    }

    #[test]
    fn gathers_the_rows_of_one_order() {
        let csv = "Name,Lineitem name\n#1,a\n#1,b\n#2,c\n,d\n#3,e\n";
        assert_eq!(groups(csv), vec![vec![2, 3], vec![4, 5], vec![6]]);
    }

    #[test]
    fn looks_cells_up_by_name_in_any_case() {
        let mut table = Table::open("\u{feff}Customer ID,Email\n'123 , a@b.co\n".as_bytes()).expect("header");
        let row = table.next().expect("row").expect("io").expect("valid");
        assert_eq!(row.get("customer id"), Some("123"));
        assert_eq!(row.get("EMAIL"), Some("a@b.co"));
        assert_eq!(row.get("Phone"), None);
        assert_eq!(row.line, 2);
    }
}
