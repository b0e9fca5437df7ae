//! From linked pairs to clusters: union-find, strongest links first, never letting a cluster
//! grow past the size limit (a chain of weak links must not merge a whole city into one person).

/// Cluster of each record, named by its smallest member index.
pub fn connected(n: usize, links: &[(u32, u32, f64)], max_size: usize) -> Vec<u32> {
    let mut parent: Vec<u32> = (0..n as u32).collect();
    let mut size = vec![1usize; n];
    let mut order: Vec<&(u32, u32, f64)> = links.iter().collect();
    order.sort_by(|a, b| b.2.total_cmp(&a.2).then((a.0, a.1).cmp(&(b.0, b.1))));
    for &(i, j, _) in order {
        let (a, b) = (find(&mut parent, i), find(&mut parent, j));
        if a != b && size[a as usize] + size[b as usize] <= max_size {
            let (keep, gone) = (a.min(b), a.max(b));
            parent[gone as usize] = keep;
            size[keep as usize] += size[gone as usize];
        }
    }
    (0..n as u32).map(|i| find(&mut parent, i)).collect()
}

fn find(parent: &mut [u32], mut i: u32) -> u32 {
    while parent[i as usize] != i {
        parent[i as usize] = parent[parent[i as usize] as usize];
        i = parent[i as usize];
    }
    i
}

#[cfg(test)]
mod tests {
    use super::connected;

    #[test]
    fn chains_merge_and_the_size_limit_holds() {
        let links = [(0, 1, 0.99), (1, 2, 0.95), (3, 4, 0.97), (2, 3, 0.91)];
        assert_eq!(connected(6, &links, 10), vec![0, 0, 0, 0, 0, 5]);
        // With at most 3 per cluster the weakest bridge (2-3) is dropped.
        assert_eq!(connected(6, &links, 3), vec![0, 0, 0, 3, 3, 5]);
    }
}
