// Just enough of a document for the UI renderers under node --test: elements with
// properties, attributes, children (text nodes included), textContent, listeners and
// querySelector for `#id`, `[attr]` and `[attr="value"]`. No HTML parsing at all, so a test
// sees exactly which nodes were created.

class FakeNode {
  constructor(tagName, text = '') {
    this.tagName = tagName;
    this.children = [];
    this.parent = null;
    this.hidden = false;
    this.attributes = new Map();
    this.listeners = new Map();
    this._text = text;
  }
  setAttribute(name, value) {
    this.attributes.set(name, String(value));
  }
  getAttribute(name) {
    return this.attributes.get(name) ?? null;
  }
  hasAttribute(name) {
    return this.attributes.has(name);
  }
  removeAttribute(name) {
    this.attributes.delete(name);
  }
  addEventListener(type, listener) {
    this.listeners.set(type, [...(this.listeners.get(type) ?? []), listener]);
  }
  /** Calls the `type` listeners with a minimal event; returns whether one prevented the default. */
  dispatch(type) {
    let prevented = false;
    const event = { type, target: this, preventDefault: () => (prevented = true) };
    for (const listener of this.listeners.get(type) ?? []) listener(event);
    return prevented;
  }
  matches(selector) {
    const id = /^#([\w-]+)$/.exec(selector);
    if (id) return this.getAttribute('id') === id[1];
    const attr = /^\[([\w-]+)(?:="([^"]*)")?\]$/.exec(selector);
    if (!attr) throw new Error(`fakedom: unsupported selector ${selector}`);
    return attr[2] === undefined ? this.hasAttribute(attr[1]) : this.getAttribute(attr[1]) === attr[2];
  }
  querySelectorAll(selector) {
    const found = [];
    const walk = (node) => {
      for (const c of node.children) {
        if (c.tagName !== '#text' && c.matches(selector)) found.push(c);
        walk(c);
      }
    };
    walk(this);
    return found;
  }
  querySelector(selector) {
    return this.querySelectorAll(selector)[0] ?? null;
  }
  get textContent() {
    return this.tagName === '#text' ? this._text : this.children.map((c) => c.textContent).join('');
  }
  set textContent(t) {
    if (this.tagName === '#text') this._text = String(t);
    else this.replaceChildren(new FakeNode('#text', String(t)));
  }
  get lastElementChild() {
    return this.children[this.children.length - 1] ?? null;
  }
  append(...nodes) {
    for (const n of nodes) {
      const node = typeof n === 'string' ? new FakeNode('#text', n) : n;
      node.parent = this;
      this.children.push(node);
    }
  }
  appendChild(node) {
    this.append(node);
    return node;
  }
  replaceChildren(...nodes) {
    this.children = [];
    this.append(...nodes);
  }
  remove() {
    if (this.parent) this.parent.children = this.parent.children.filter((c) => c !== this);
    this.parent = null;
  }
}

export function fakeDocument() {
  return {
    activeElement: null,
    createElement: (tag) => new FakeNode(tag.toUpperCase()),
    createTextNode: (text) => new FakeNode('#text', text),
  };
}

/** An element `tag` with `attrs` (set as attributes) holding `children`. */
export function h(doc, tag, attrs = {}, ...children) {
  const el = doc.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  el.append(...children);
  return el;
}
