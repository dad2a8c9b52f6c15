// Every GraphQL document the app sends, as named operations built from shared fragments; no
// other module holds GraphQL text. A document carries the definitions of exactly the fragments
// it spreads, directly or through another fragment (GraphQL rejects unused ones).

const FRAGMENTS = new Map();

/** Defines the fragment `name` on `type`. */
function fragment(name, type, selection) {
  FRAGMENTS.set(name, `fragment ${name} on ${type} ${selection}`);
}

/** The operation `text` followed by every fragment it needs. */
function document(text) {
  const needed = new Set();
  const visit = (source) => {
    for (const [, name] of source.matchAll(/\.\.\.\s*([_A-Za-z]\w*)/g)) {
      if (name === 'on' || needed.has(name)) continue;
      if (!FRAGMENTS.has(name)) throw new Error(`no fragment ${name}`);
      needed.add(name);
      visit(FRAGMENTS.get(name));
    }
  };
  visit(text);
  return [text, ...[...needed].map((name) => FRAGMENTS.get(name))].join('\n');
}

fragment('PageFields', 'PageInfo', '{ hasNextPage endCursor }');
fragment('TagFields', 'Tag', '{ id name color }');
fragment('TaskFields', 'Task', `{
  id title description priority completed completedAt dueAt createdAt updatedAt version
  tags { ...TagFields }
  recurrence { rule timezone anchor }
  reminders { id minutesBeforeDue at fireAt status }
  seriesId previousOccurrence { id } nextOccurrence { id dueAt completed }
}`);
fragment('TaskVersionFields', 'TaskVersion', `{
  version kind at causedBy changes { field old new }
  task { id previousOccurrence { id title dueAt } }
}`);
fragment('DeletedTaskFields', 'DeletedTask', `{
  deletedAt
  task { id title description priority completed dueAt recurrence { rule } tags { ...TagFields } }
}`);
fragment('NotificationFields', 'Notification', '{ id kind title body createdAt readAt dueAt remindAt task { id title dueAt } }');
fragment('UserFields', 'User', '{ id timezone webhookUrl }');

// The signed-in user.

/** Whether the token is accepted. */
export const VIEWER = document('query Viewer { me { id } }');
export const ME = document('query Me { me { ...UserFields } }');
export const UPDATE_SETTINGS = document(`mutation UpdateSettings($input: SettingsInput!) {
  updateSettings(input: $input) { ...UserFields } }`);

// Tasks.

/** One page of the list (`edges`: each task's cursor) and the open and overdue counts. */
export const TASK_LIST = document(`query TaskList($filter: TaskFilter, $search: String, $sort: [TaskSort!],
    $first: Int, $after: String) {
  tasks(filter: $filter, search: $search, sort: $sort, first: $first, after: $after) {
    totalCount
    pageInfo { ...PageFields }
    edges { cursor node { ...TaskFields } }
  }
  open: tasks(filter: { completed: false }, first: 1) { totalCount }
  overdue: tasks(filter: { overdue: true }, first: 1) { totalCount }
}`);
/** One task for the editor, with the next `$upcoming` dates of its recurrence. */
export const TASK = document(`query Task($id: ID!, $upcoming: Int!) {
  task(id: $id) { ...TaskFields recurrence { upcoming(count: $upcoming) } } }`);
export const CREATE_TASK = document(`mutation CreateTask($input: CreateTaskInput!, $upcoming: Int!) {
  createTask(input: $input) { ...TaskFields recurrence { upcoming(count: $upcoming) } } }`);
export const UPDATE_TASK = document(`mutation UpdateTask($id: ID!, $input: UpdateTaskInput!, $upcoming: Int!) {
  updateTask(id: $id, input: $input) { ...TaskFields recurrence { upcoming(count: $upcoming) } } }`);
export const COMPLETE_TASK = document('mutation CompleteTask($id: ID!) { completeTask(id: $id) { ...TaskFields } }');
export const REOPEN_TASK = document('mutation ReopenTask($id: ID!) { reopenTask(id: $id) { ...TaskFields } }');
export const DELETE_TASK = document('mutation DeleteTask($id: ID!) { deleteTask(id: $id) }');
/** Brings a deleted task back (a new version, with its tags and pending reminders). */
export const RESTORE_TASK = document('mutation RestoreTask($id: ID!) { restoreTask(id: $id) { ...TaskFields } }');
/**
 * A page of one task's versions, newest first. `$asOf` reads a deleted task as it was before
 * (a deleted task is not `task(id)` any more); null reads the task as it is.
 */
export const TASK_HISTORY = document(`query TaskHistory($id: ID!, $asOf: DateTime, $first: Int, $after: String) {
  task(id: $id, asOf: $asOf) { id history(first: $first, after: $after) {
    pageInfo { ...PageFields } nodes { ...TaskVersionFields } } } }`);
/** A page of the deleted tasks, most recently deleted first, as each was when deleted. */
export const DELETED_TASKS = document(`query DeletedTasks($first: Int, $after: String) {
  deletedTasks(first: $first, after: $after) { pageInfo { ...PageFields } nodes { ...DeletedTaskFields } } }`);
/** The next dates of a rule that is not saved yet, as the API computes them once it is saved. */
export const PREVIEW_RECURRENCE = document(`query PreviewRecurrence($recurrence: RecurrenceInput!, $dueAt: DateTime!,
    $count: Int) {
  previewRecurrence(recurrence: $recurrence, dueAt: $dueAt, count: $count) }`);
/** Every change of the user's tasks, with the task as it is after the change. */
export const TASK_CHANGED = document('subscription TaskChanged { taskChanged { kind taskId task { ...TaskFields } } }');

// Tags.

export const TAG_LIST = document('query TagList { tags { ...TagFields taskCount } }');
export const CREATE_TAG = document(`mutation CreateTag($name: String!, $color: String) {
  createTag(name: $name, color: $color) { ...TagFields } }`);
export const UPDATE_TAG = document(`mutation UpdateTag($id: ID!, $name: String, $color: String) {
  updateTag(id: $id, name: $name, color: $color) { ...TagFields } }`);
export const DELETE_TAG = document('mutation DeleteTag($id: ID!) { deleteTag(id: $id) }');

// Notifications.

export const NOTIFICATION_LIST = document(`query NotificationList($first: Int, $after: String) {
  notifications(first: $first, after: $after) {
    totalCount pageInfo { ...PageFields } nodes { ...NotificationFields } } }`);
export const UNREAD_COUNT = document('query UnreadCount { notifications(unreadOnly: true, first: 1) { totalCount } }');
/** The unread notifications to mark read, a page at a time. */
export const UNREAD_NOTIFICATIONS = document(
  'query UnreadNotifications { notifications(unreadOnly: true, first: 100) { nodes { id } } }');
export const MARK_NOTIFICATION_READ = document(`mutation MarkNotificationRead($id: ID!) {
  markNotificationRead(id: $id) { id readAt } }`);
export const NOTIFICATION_RECEIVED = document(
  'subscription NotificationReceived { notificationReceived { ...NotificationFields } }');
