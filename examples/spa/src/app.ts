// The Latchkey demo app: a single page on its own origin, using @latchkey/browser as loaded
// by the browser from /latchkey.js (no bundler needed for the client itself).
import { createLatchkey, LatchkeyError, type User } from "/latchkey.js";

const meta = (name: string) =>
  document.querySelector<HTMLMetaElement>(`meta[name="${name}"]`)?.content ?? "";
const issuer = meta("latchkey-issuer");
const filesApi = meta("files-api");
const auth = createLatchkey({ issuer });

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;

function status(text: string): void {
  $("status").textContent = text;
}

function explain(e: unknown): string {
  if (e instanceof LatchkeyError) {
    if (e.code === "network_error") return "Cannot reach the server; try again in a moment.";
    return `${e.message}`;
  }
  return String(e);
}

/** Runs `action`, showing its failure in the status line (never an unhandled rejection). */
function guarded(action: () => Promise<void>): () => void {
  return () => {
    action().catch((e: unknown) => status(explain(e)));
  };
}

function el(tag: string, text?: string, attrs: Record<string, string> = {}): HTMLElement {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  return node;
}

async function json<T>(response: Response): Promise<T> {
  if (response.ok) return (await response.json()) as T;
  let code = `http_${response.status}`;
  try {
    code = ((await response.json()) as { code?: string }).code ?? code;
  } catch {
    // not JSON: keep the status
  }
  throw new Error(`${response.status} ${code}`);
}

interface FileSummary {
  id: string;
  name: string;
  owner: string;
  updated_at: string;
  access: string;
}

interface Session {
  id: string;
  kind?: string;
  created_at: string;
  last_used_at: string;
  user_agent: string | null;
  ip: string | null;
  current: boolean;
}

async function loadFiles(): Promise<void> {
  const { files } = await json<{ files: FileSummary[] }>(await auth.fetch(`${filesApi}/files`));
  const list = $("files");
  list.replaceChildren(
    ...files.map((f) => el("li", `${f.name} (${f.access}, ${new Date(f.updated_at).toLocaleString()})`)),
  );
  if (files.length === 0) list.append(el("li", "No files yet.", { class: "muted" }));
}

async function loadSessions(): Promise<void> {
  const { sessions } = await json<{ sessions: Session[] }>(await auth.fetch(`${issuer}/auth/sessions`));
  sessions.sort((a, b) => Number(b.current) - Number(a.current));
  $("sessions").replaceChildren(
    ...sessions.map((s) => {
      const item = el("li");
      const agent = (s.user_agent ?? "unknown browser").replace(/^(.{60}).+$/, "$1…");
      item.append(el("span", `${s.current ? "This device" : agent}, since ${new Date(s.created_at).toLocaleString()} `));
      const button = el("button", s.current ? "Sign out this device" : "Sign out", { type: "button", class: "link" });
      button.addEventListener(
        "click",
        guarded(async () => {
          if (s.current) return auth.logout();
          const response = await auth.fetch(`${issuer}/auth/sessions/${encodeURIComponent(s.id)}`, { method: "DELETE" });
          if (!response.ok) await json(response);
          await loadSessions();
        }),
      );
      item.append(button);
      return item;
    }),
  );
}

function show(user: User | null): void {
  document.body.dataset.state = user ? "signed-in" : "signed-out";
  $("signed-in").hidden = !user;
  $("signed-out").hidden = !!user;
  const who = $("whoami");
  who.hidden = !user;
  who.textContent = user ? `Signed in as ${user.username}` : "";
  if (user) {
    performance.mark("latchkey:signed-in");
    guarded(async () => {
      await Promise.all([loadFiles(), loadSessions()]);
    })();
  }
}

auth.onChange((change) => {
  if (change.type !== "refreshed") show(change.user);
  if (change.type === "signed_out" && change.fromOtherTab) status("Signed out in another tab.");
});

function form(id: string): HTMLFormElement {
  return $<HTMLFormElement>(id);
}

form("login-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const data = new FormData(form("login-form"));
  guarded(async () => {
    status("");
    await auth.login(String(data.get("username")), String(data.get("password")));
    form("login-form").reset();
  })();
});

form("register-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const data = new FormData(form("register-form"));
  const username = String(data.get("username"));
  const password = String(data.get("password"));
  const email = String(data.get("email") ?? "");
  guarded(async () => {
    status("");
    await auth.register(username, password, email || undefined);
    await auth.login(username, password);
    form("register-form").reset();
  })();
});

form("upload-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const upload = form("upload-form");
  const data = new FormData(upload);
  guarded(async () => {
    const file = data.get("file");
    const content = file instanceof File && file.size > 0 ? await file.text() : String(data.get("content") ?? "");
    const response = await auth.fetch(`${filesApi}/files`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ name: String(data.get("name")), content }),
    });
    await json(response);
    upload.reset();
    status("");
    await loadFiles();
  })();
});

$("logout").addEventListener("click", guarded(() => auth.logout()));
$("logout-all").addEventListener("click", guarded(() => auth.logoutEverywhere()));

async function providers(): Promise<void> {
  const list = await auth.providers();
  $("providers").replaceChildren(
    ...list.map((p) => {
      const button = el("button", `Sign in with ${p.display_name}`, { type: "button" });
      button.addEventListener("click", () => auth.signInWith(p.name, `${location.origin}/`));
      return button;
    }),
  );
}

async function start(): Promise<void> {
  const error = new URLSearchParams(location.search).get("error");
  if (error) {
    status(`Sign-in failed: ${error}`);
    history.replaceState(null, "", location.pathname);
  }
  try {
    // A restored user arrives through onChange ("signed_in"); only "signed out" is shown here.
    if (!(await auth.restore())) show(null);
  } catch (e) {
    document.body.dataset.state = "error";
    status(explain(e));
    return;
  }
  providers().catch(() => {
    // providers are optional; the password forms work without them
  });
}

void start();
