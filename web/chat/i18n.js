// The web chat's interface strings in Korean and English, and the language choice.
const STRINGS = {
  ko: {
    conversations: '대화', newChat: '새 대화', exportAll: '모두 내보내기 (JSON)', model: '모델',
    settings: '설정', systemPrompt: '시스템 프롬프트', temperature: '온도', maxTokens: '최대 토큰',
    apiKey: 'API 키', rememberKey: '이 기기에 키 저장', close: '닫기', message: '메시지',
    placeholder: '메시지를 입력하세요 (Enter 보내기, Shift+Enter 줄바꿈)', send: '보내기', stop: '중지',
    rename: '이름 바꾸기', delete: '삭제', export: '내보내기', regenerate: '다시 생성', edit: '편집',
    saveSend: '저장 후 보내기', cancel: '취소', copy: '복사', copied: '복사됨',
    untitled: '새 대화', renamePrompt: '대화 이름', confirmDelete: '이 대화를 삭제할까요?',
    you: '나', assistant: 'AI', aiLabel: 'AI 생성', stopped: '중지됨', tokens: '토큰',
    context: '컨텍스트', toolCall: '도구 호출', toolResult: '도구 결과',
    errBusy: '서버가 바쁩니다. 잠시 후 다시 시도하세요.', errKey: 'API 키가 없거나 틀렸습니다. 설정에서 키를 입력하세요.',
    errNetwork: '서버에 연결할 수 없습니다. 입력한 글은 그대로 남아 있습니다.',
    errDropped: '연결이 끊겼습니다. 받은 부분까지 저장했습니다.', errServer: '서버 오류',
    errTooLong: '대화가 모델의 컨텍스트보다 깁니다. 새 대화를 시작하거나 앞부분을 지우세요.',
    errStorage: '브라우저 저장 공간이 가득 차 대화를 저장하지 못했습니다.',
    retryIn: (s) => `${s}초 후 다시 시도할 수 있습니다.`, noModels: '모델 목록을 불러오지 못했습니다.',
    working: '생성 중…', empty: '무엇이든 물어보세요.', langName: '한국어',
    useTools: '서버의 도구 사용 (MCP, 실행 전 승인)', approvalAsk: '도구 실행 승인 요청', approve: '승인', deny: '거부',
    approved: '승인함', denied: '거부함', toolError: '오류',
    attach: '이미지 첨부', image: '이미지', removeImage: '이미지 빼기', errImageType: '이미지 파일만 첨부할 수 있습니다.',
    errImageSize: '이미지가 10MB보다 큽니다.',
  },
  en: {
    conversations: 'Conversations', newChat: 'New chat', exportAll: 'Export all (JSON)', model: 'Model',
    settings: 'Settings', systemPrompt: 'System prompt', temperature: 'Temperature', maxTokens: 'Max tokens',
    apiKey: 'API key', rememberKey: 'Remember the key on this device', close: 'Close', message: 'Message',
    placeholder: 'Type a message (Enter to send, Shift+Enter for a new line)', send: 'Send', stop: 'Stop',
    rename: 'Rename', delete: 'Delete', export: 'Export', regenerate: 'Regenerate', edit: 'Edit',
    saveSend: 'Save & send', cancel: 'Cancel', copy: 'Copy', copied: 'Copied',
    untitled: 'New chat', renamePrompt: 'Conversation name', confirmDelete: 'Delete this conversation?',
    you: 'You', assistant: 'AI', aiLabel: 'AI-generated', stopped: 'stopped', tokens: 'tokens',
    context: 'context', toolCall: 'Tool call', toolResult: 'Tool result',
    errBusy: 'The server is busy. Try again in a moment.', errKey: 'The API key is missing or wrong. Enter it in Settings.',
    errNetwork: 'Cannot reach the server. Your text is still in the box.',
    errDropped: 'The connection dropped. What arrived so far is kept.', errServer: 'Server error',
    errTooLong: 'The conversation is longer than the model\'s context. Start a new chat or delete early messages.',
    errStorage: 'The browser\'s storage is full: the conversation could not be saved.',
    retryIn: (s) => `You can retry in ${s} s.`, noModels: 'Could not load the model list.',
    working: 'Generating…', empty: 'Ask anything.', langName: 'English',
    useTools: 'Use the server\'s tools (MCP, approved before they run)', approvalAsk: 'Approval needed to run a tool',
    approve: 'Approve', deny: 'Deny', approved: 'approved', denied: 'denied', toolError: 'error',
    attach: 'Attach image', image: 'Image', removeImage: 'Remove image', errImageType: 'Only image files can be attached.',
    errImageSize: 'The image is larger than 10 MB.',
  },
};

export const LANGS = Object.keys(STRINGS);

export function initialLang(storage, navigatorLangs) {
  const saved = storage.getItem('modu.lang');
  if (saved && STRINGS[saved]) return saved;
  for (const l of navigatorLangs || []) {
    if (/^ko\b/i.test(l)) return 'ko';
    if (/^en\b/i.test(l)) return 'en';
  }
  return 'en';
}

export function t(lang, key, ...args) {
  const v = (STRINGS[lang] || STRINGS.en)[key] ?? STRINGS.en[key] ?? key;
  return typeof v === 'function' ? v(...args) : v;
}

// Fills every [data-i18n] element's text, [data-i18n-placeholder] placeholder and
// [data-i18n-label] aria-label under root.
export function applyStrings(root, lang) {
  root.documentElement.lang = lang;
  for (const el of root.querySelectorAll('[data-i18n]')) el.textContent = t(lang, el.dataset.i18n);
  for (const el of root.querySelectorAll('[data-i18n-placeholder]')) el.placeholder = t(lang, el.dataset.i18nPlaceholder);
  for (const el of root.querySelectorAll('[data-i18n-label]')) el.setAttribute('aria-label', t(lang, el.dataset.i18nLabel));
}
