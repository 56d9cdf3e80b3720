// Just enough of a document for the UI renderers under node --test: elements with
// properties, children (text nodes included) and textContent. No HTML parsing at all, so a
// test sees exactly which nodes were created.

class FakeNode {
  constructor(tagName, text = '') {
    this.tagName = tagName;
    this.children = [];
    this.parent = null;
    this.hidden = false;
    this._text = text;
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
    createElement: (tag) => new FakeNode(tag.toUpperCase()),
    createTextNode: (text) => new FakeNode('#text', text),
  };
}
