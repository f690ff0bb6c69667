# capture.zsh SCRIPT LINE: the matches that zsh's completion system
# offers for LINE typed then TAB, with the completion SCRIPT loaded, one per
# line. It runs an interactive zsh in a pseudo terminal (zsh/zpty) and
# replaces compadd with a wrapper that prints what it adds (the technique
# of zsh-capture-completion).
zmodload zsh/zpty || exit 2
# Non-blocking (-b): a read returns what is there, so that output without
# a newline (zle's redraws) cannot hold the loop below past its deadline.
zpty -b z zsh -f -i
zpty -w z "PS1=''; unsetopt zle 2>/dev/null; setopt zle"
zpty -w z 'print -r -- "<""PID>$$"'
zpty -w z "autoload -Uz compinit && compinit -u -D"
zpty -w z "source ${(q)1}"
zpty -w z "zstyle ':completion:*' list-grouped false; zstyle ':completion:*' insert-tab false; zstyle ':completion:*' list-separator ''"
zpty -w z 'compadd () {
  if [[ ${@[1,(i)(-|--)]} == *-(O|A|D)\ * ]]; then builtin compadd "$@"; return $?; fi
  typeset -a __hits
  builtin compadd -A __hits "$@"
  local r=$?
  local -A apre hpre
  zparseopts -E P:=apre p:=hpre
  local h; for h in $__hits; do print -r -- "<""M>${apre[-P]}${hpre[-p]}$h"; done
  return r
}'
zpty -w z 'finish () { print -r -- "<""END>"; exit }'
# ^Y, not ^X: ^X starts other bindings in the emacs keymap, so zle waits
# to see whether another key follows, and one run in four never finished.
zpty -w z "zle -N finish; bindkey '^Y' finish"
zpty -w z "$2"$'\t\x19'
local buf= chunk line cr=$'\r' nl=$'\n' child=
# Bounded: 25 seconds at most, whatever zsh does (one case took 10 s on
# a loaded CI machine).
integer deadline=$(( SECONDS + 25 )) done=0
while (( ! done && SECONDS < deadline )); do
  if ! zpty -r z chunk; then
    sleep 0.05
    continue
  fi
  buf+=$chunk
  while (( ! done )) && [[ $buf == *$nl* ]]; do
    line=${buf%%$nl*}
    buf=${buf#*$nl}
    [[ $line == *'<PID>'* ]] && child=${${line##*<PID>}//$cr/}
    [[ $line == *'<END>'* ]] && done=1
    [[ $line == *'<M>'* ]] && print -r -- "${${line##*<M>}//$cr/}"
  done
done
zpty -d z
# The shell in the terminal has its own session: end it for sure.
[[ -n $child ]] && kill -KILL $child 2>/dev/null
exit 0
