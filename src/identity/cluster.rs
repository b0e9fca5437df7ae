//! From linked pairs to clusters: union-find, strongest links first, never letting a cluster
//! grow past the size limit (a chain of weak links must not merge a whole city into one person).

use super::Link;

/// Cluster of each record, named by its smallest member index.
pub fn connected(n: usize, links: &[Link], max_size: usize) -> Vec<u32> {
    let mut parent: Vec<u32> = (0..n as u32).collect();
    let mut size = vec![1usize; n];
    let mut order: Vec<&Link> = links.iter().collect();
    order.sort_by(|a, b| b.probability.total_cmp(&a.probability).then((a.i, a.j).cmp(&(b.i, b.j))));
    for &&Link { i, j, .. } in &order {
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
    use crate::identity::Link;

    #[test]
    fn chains_merge_and_the_size_limit_holds() {
        let links = [(0, 1, 0.99), (1, 2, 0.95), (3, 4, 0.97), (2, 3, 0.91)].map(|(i, j, probability)| Link { i, j, probability, rule: 0 });
        assert_eq!(connected(6, &links, 10), vec![0, 0, 0, 0, 0, 5]);
        // With at most 3 per cluster the weakest bridge (2-3) is dropped.
        assert_eq!(connected(6, &links, 3), vec![0, 0, 0, 3, 3, 5]);
    }
}
