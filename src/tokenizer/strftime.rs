//! `strftime_now(format)`, which transformers gives chat templates (Llama 3.2/3.3 print
//! today's date in the system prompt). Time is UTC; the common C directives are supported.

use minijinja::{Error, ErrorKind};
use std::time::{SystemTime, UNIX_EPOCH};

const MONTHS: [&str; 12] = [
    "January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
    "November", "December",
];
const WEEKDAYS: [&str; 7] = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"];

/// The template function: the current UTC time formatted with `format`.
pub(crate) fn strftime_now(format: &str) -> Result<String, Error> {
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
    format_utc(secs, format).map_err(|detail| Error::new(ErrorKind::InvalidOperation, detail))
}

/// Formats seconds since the Unix epoch (UTC) like C's `strftime`.
pub(crate) fn format_utc(secs: i64, format: &str) -> Result<String, String> {
    let days = secs.div_euclid(86_400);
    let of_day = secs.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    let (hour, minute, second) = (of_day / 3600, of_day / 60 % 60, of_day % 60);
    let weekday = (days + 3).rem_euclid(7) as usize; // 1970-01-01 was a Thursday (index 3)
    let day_of_year = days - days_from_civil(year, 1, 1) + 1;
    let month_name = MONTHS[(month - 1) as usize];

    let mut out = String::new();
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let directive = chars.next().ok_or("strftime_now: format ends with a lone '%'")?;
        let piece = match directive {
            'Y' => year.to_string(),
            'y' => format!("{:02}", year.rem_euclid(100)),
            'm' => format!("{month:02}"),
            'd' => format!("{day:02}"),
            'e' => format!("{day:2}"),
            'j' => format!("{day_of_year:03}"),
            'H' => format!("{hour:02}"),
            'I' => format!("{:02}", (hour + 11) % 12 + 1),
            'p' => (if hour < 12 { "AM" } else { "PM" }).to_string(),
            'M' => format!("{minute:02}"),
            'S' => format!("{second:02}"),
            'B' => month_name.to_string(),
            'b' | 'h' => month_name[..3].to_string(),
            'A' => WEEKDAYS[weekday].to_string(),
            'a' => WEEKDAYS[weekday][..3].to_string(),
            '%' => "%".to_string(),
            other => return Err(format!("strftime_now: unsupported directive %{other} in {format:?}")),
        };
        out.push_str(&piece);
    }
    Ok(out)
}

/// Proleptic Gregorian date of a day count since 1970-01-01 (400-year era arithmetic).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468; // days since 0000-03-01
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153; // March = 0
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 { month_index + 3 } else { month_index - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Inverse of [`civil_from_days`].
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y.rem_euclid(400);
    let month_index = if month > 2 { month - 3 } else { month + 9 };
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::format_utc;

    #[test]
    fn formats_known_instants() {
        // Expected strings from `date -u -d @SECS +FORMAT` (GNU coreutils).
        assert_eq!(format_utc(0, "%Y-%m-%d %H:%M:%S %a %j").unwrap(), "1970-01-01 00:00:00 Thu 001");
        // 1721995200 = 2024-07-26 12:00:00 UTC, the date Llama 3.1's template falls back to.
        assert_eq!(format_utc(1_721_995_200, "%d %b %Y").unwrap(), "26 Jul 2024");
        assert_eq!(format_utc(1_721_995_200, "%A %B %e, %I %p %%").unwrap(), "Friday July 26, 12 PM %");
        // 951782400 = 2000-02-29 (a leap day in a century year divisible by 400).
        assert_eq!(format_utc(951_782_400, "%Y-%m-%d %j %y").unwrap(), "2000-02-29 060 00");
        // 4107542399 = 2100-02-28 23:59:59 (2100 is not a leap year).
        assert_eq!(format_utc(4_107_542_399, "%Y-%m-%d %H:%M:%S %A").unwrap(), "2100-02-28 23:59:59 Sunday");
        // Before the epoch: -86401 = 1969-12-30 23:59:59.
        assert_eq!(format_utc(-86_401, "%Y-%m-%d %H:%M:%S").unwrap(), "1969-12-30 23:59:59");
    }

    #[test]
    fn rejects_unknown_directives() {
        let err = format_utc(0, "%Q").unwrap_err();
        assert!(err.contains("%Q"), "{err}");
    }
}
