// The admin card: add a user, make an ingest token (shown once), read the audit log. Only
// DOM: what the admin does is reported through callbacks; text from the server is set with
// textContent.

export function createAdmin(root, on) {
  const said = root.querySelector('[data-testid="admin-said"]');
  const list = root.querySelector('[data-testid="audit"]');
  const userForm = root.querySelector('#add-user');
  const tokenForm = root.querySelector('#add-token');
  userForm.addEventListener('submit', (e) => {
    e.preventDefault();
    const password = root.querySelector('#new-password');
    on.addUser({
      name: root.querySelector('#new-user').value.trim(),
      role: root.querySelector('#new-role').value,
      password: password.value,
    });
    password.value = '';
  });
  tokenForm.addEventListener('submit', (e) => {
    e.preventDefault();
    on.addToken(root.querySelector('#new-token-name').value.trim());
  });
  root.querySelector('#audit-refresh').addEventListener('click', () => on.refreshAudit());
  return {
    /** A one-line answer under the forms (a new token is shown here, once). */
    say(text) {
      said.textContent = text;
    },
    /** Fills the list with audit entries, newest first. */
    showAudit(entries) {
      list.replaceChildren();
      for (const e of [...entries].reverse()) {
        const li = document.createElement('li');
        li.textContent = `${String(e.time).slice(11, 19)} ${e.action} · ${e.actor} · ${e.outcome}`;
        list.append(li);
      }
    },
  };
}
