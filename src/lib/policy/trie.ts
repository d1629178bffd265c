/**
 * A level trie of plain topic filters (literal children, one `+` child, a `#` slot per node), answering "which
 * stored filters match this topic name" and "which might overlap this filter" in time that depends on the
 * topic's depth and the wildcards on its path, not on how many filters are stored. Holds one value per filter;
 * what a value means (and which filters are allowed in) is the caller's business (policy/store.ts).
 *
 * Matching follows topicMatches in filter.ts: `+` is exactly one level (possibly empty), `#` any remainder
 * including none (`a/#` matches `a`), and a first-level `+` or `#` never matches a `$` topic (MQTT 5 §4.7.2).
 * Filters must be valid and plain (no `$share/`): the trie does not validate them.
 */

interface Node<T> {
  children: Map<string, Node<T>> | null
  plus: Node<T> | null
  /** Value of the filter that ends at this node (no trailing `#`). */
  entry: T | null
  /** Value of the filter that is this node's prefix followed by `#`. */
  hash: T | null
}

const newNode = <T>(): Node<T> => ({ children: null, plus: null, entry: null, hash: null })
const emptyNode = <T>(n: Node<T>) => n.entry === null && n.hash === null && n.plus === null && (n.children === null || n.children.size === 0)

export class TopicTrie<T> {
  private root: Node<T> = newNode()

  /** Stores `value` under `filter`, replacing what was there. */
  insert(filter: string, value: T): void {
    const levels = filter.split('/')
    let node = this.root
    for (const level of levels) {
      if (level === '#') {
        node.hash = value
        return
      }
      if (level === '+') {
        node = node.plus ??= newNode()
      } else {
        node.children ??= new Map()
        let child = node.children.get(level)
        if (!child) {
          child = newNode()
          node.children.set(level, child)
        }
        node = child
      }
    }
    node.entry = value
  }

  /** Removes `filter` (no-op when absent) and prunes the nodes it leaves empty. */
  remove(filter: string): void {
    removeAt(this.root, filter.split('/'), 0)
  }

  clear(): void {
    this.root = newNode()
  }

  /** True when nothing is stored (every removal pruned its path). */
  get empty(): boolean {
    return emptyNode(this.root)
  }

  /** Appends the value of every stored filter that matches topic name `topic` (at most once each). */
  match(topic: string, out: T[]): void {
    const levels = topic.split('/')
    collectMatches(this.root, levels, 0, (levels[0] as string).startsWith('$'), out)
  }

  /**
   * Appends a superset of the values whose filters overlap filter `filter` (some topic matches both): every
   * stored filter that could, ignoring the `$` rule and `#`'s normalisation. Callers confirm each candidate
   * (levelsOverlap in filter.ts). May append a value twice only if it is stored under two filters.
   */
  overlapCandidates(filter: string, out: T[]): void {
    collectOverlapCandidates(this.root, filter.split('/'), 0, out)
  }
}

function removeAt<T>(node: Node<T>, levels: readonly string[], i: number): void {
  if (i === levels.length) {
    node.entry = null
    return
  }
  const level = levels[i] as string
  if (level === '#') {
    node.hash = null
    return
  }
  if (level === '+') {
    if (!node.plus) return
    removeAt(node.plus, levels, i + 1)
    if (emptyNode(node.plus)) node.plus = null
    return
  }
  const child = node.children?.get(level)
  if (!child) return
  removeAt(child, levels, i + 1)
  if (emptyNode(child)) node.children?.delete(level)
}

function collectMatches<T>(node: Node<T>, t: readonly string[], i: number, dollar: boolean, out: T[]): void {
  const wildOk = i > 0 || !dollar
  if (node.hash !== null && wildOk) out.push(node.hash)
  if (i === t.length) {
    if (node.entry !== null) out.push(node.entry)
    return
  }
  if (node.children !== null) {
    const child = node.children.get(t[i] as string)
    if (child !== undefined) collectMatches(child, t, i + 1, dollar, out)
  }
  if (node.plus !== null && wildOk) collectMatches(node.plus, t, i + 1, dollar, out)
}

function collectOverlapCandidates<T>(node: Node<T>, f: readonly string[], i: number, out: T[]): void {
  if (node.hash !== null) out.push(node.hash)
  if (i === f.length) {
    if (node.entry !== null) out.push(node.entry)
    return
  }
  const level = f[i] as string
  if (level === '#') {
    collectSubtree(node, out, false)
    return
  }
  if (node.children !== null) {
    if (level === '+') {
      for (const child of node.children.values()) collectOverlapCandidates(child, f, i + 1, out)
    } else {
      const child = node.children.get(level)
      if (child !== undefined) collectOverlapCandidates(child, f, i + 1, out)
    }
  }
  if (node.plus !== null) collectOverlapCandidates(node.plus, f, i + 1, out)
}

/** Everything at or below `node`; its own `#` slot only when asked (the caller already took it). */
function collectSubtree<T>(node: Node<T>, out: T[], withHash: boolean): void {
  if (withHash && node.hash !== null) out.push(node.hash)
  if (node.entry !== null) out.push(node.entry)
  if (node.children !== null) for (const child of node.children.values()) collectSubtree(child, out, true)
  if (node.plus !== null) collectSubtree(node.plus, out, true)
}
