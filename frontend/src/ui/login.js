// The login form, the signed-in badge with its logout button, and what each role sees:
// elements marked data-role="admin" are shown to admins only, data-role="not-admin" (a note
// that something is an admin's) to everyone else. Only DOM: what the user does is reported
// through callbacks; text from the server is set with textContent.

/** Shows `root`'s admin-only parts to an admin (`role`), and its not-admin notes to others. */
export function showRole(root, role) {
  const admin = role === 'admin';
  for (const el of root.querySelectorAll('[data-role="admin"]')) el.hidden = !admin;
  for (const el of root.querySelectorAll('[data-role="not-admin"]')) el.hidden = admin;
}

export function createLogin(root, on) {
  const dialog = root.querySelector('#login');
  const form = dialog.querySelector('form');
  const title = dialog.querySelector('[data-testid="login-title"]');
  const tokenRow = dialog.querySelector('#login-token-row');
  const token = dialog.querySelector('#login-token');
  const user = dialog.querySelector('#login-user');
  const password = dialog.querySelector('#login-password');
  const error = dialog.querySelector('[data-testid="login-error"]');
  const badge = root.querySelector('#who');
  const name = badge.querySelector('[data-testid="who"]');
  const logoutButton = badge.querySelector('#logout');
  let mode = 'login';

  form.addEventListener('submit', (e) => {
    e.preventDefault();
    error.textContent = '';
    const values = { user: user.value.trim(), password: password.value, token: token.value.trim() };
    if (mode === 'setup') on.setup(values);
    else on.login(values);
  });
  let signedIn = false;
  logoutButton.addEventListener('click', () => (signedIn ? on.logout() : on.wantLogin()));

  return {
    /** Shows the form: `login`, or `setup` for the first admin (with `setupToken` prefilled). */
    ask(kind, setupToken = '') {
      mode = kind;
      title.textContent = kind === 'setup' ? 'Create the first admin' : 'Log in to watch';
      tokenRow.hidden = kind !== 'setup';
      token.value = setupToken;
      password.value = '';
      dialog.hidden = false;
      document.body.dataset.auth = kind;
      showRole(root, null);
      (kind === 'setup' && !setupToken ? token : user).focus();
    },
    failed(message) {
      error.textContent = message || 'login failed';
    },
    /** Hides the form and shows who is signed in (`user` null: open without login). */
    signedIn({ user: who, role }) {
      dialog.hidden = true;
      signedIn = !!who;
      badge.hidden = false;
      name.textContent = who ? `${who} · ${role}` : 'open on this machine';
      logoutButton.textContent = who ? 'Log out' : 'Log in';
      document.body.dataset.auth = 'in';
      showRole(root, role);
    },
  };
}

