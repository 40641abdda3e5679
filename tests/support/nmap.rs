//! Reading nmap's normal output, for the benchmarks that count what a scan learned.

/// nmap's count of `state` ports ("closed", "open", "unfiltered"), whether listed one per line
/// or summarised in a "Not shown: 995 closed tcp ports (reset)" line.
pub fn count(report: &str, state: &str) -> usize {
    let listed = report
        .lines()
        .filter(|l| l.split_whitespace().nth(1) == Some(state))
        .count();
    let summarised: usize = report
        .lines()
        .filter_map(|l| l.strip_prefix("Not shown: "))
        .flat_map(|l| l.split(", "))
        .filter_map(|part| {
            let mut words = part.split_whitespace();
            let n = words.next()?.parse::<usize>().ok()?;
            (words.next() == Some(state)).then_some(n)
        })
        .sum();
    listed + summarised
}

/// The ports a reply came back from, whatever it said: open, closed or unfiltered (nmap's
/// "filtered" and "open|filtered" mean that nothing came back).
pub fn answered(report: &str) -> usize {
    ["open", "closed", "unfiltered"]
        .iter()
        .map(|state| count(report, state))
        .sum()
}
