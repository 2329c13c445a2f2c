{#- qubes-claw in dom0: the same plan as qubes-claw-install (installer/plan),
    for managed machines. Apply with: sudo qubesctl state.apply qubes-claw #}
{%- from "qubes-claw/map.jinja" import claw with context %}
{%- if grains['id'] == 'dom0' %}
{%- set a = claw.agent %}
{%- set r = claw.remote %}

qubes-claw-agent:
  qvm.vm:
    - name: {{ a.name }}
    - actions: [present, prefs, tags, features, service]
    - present:
      - class: {{ a.class }}
{%- if a.template %}
      - template: {{ a.template }}
{%- endif %}
      - label: {{ a.label }}
    - prefs:
      - label: {{ a.label }}
{%- if a.netvm %}
      - netvm: {{ ('' if a.netvm == 'none' else a.netvm)|tojson }}
{%- endif %}
      - memory: {{ a.memory|int }}
      - maxmem: {{ a.maxmem|int }}
      - vcpus: {{ a.vcpus|int }}
      - autostart: {{ a.autostart|tojson }}
    - tags:
      - add: [{{ a.tag }}]
    - features:
      - set:
        - qubes-claw.role: "server"
        - qubes-claw.ports: {{ claw.ports|join(',')|tojson }}
        - qubes-claw.description: {{ a.description|tojson }}
{%- for s in a.services %}
        - supported-service.{{ s }}: "1"
{%- endfor %}
    - service:
      - enable: {{ a.services|list|tojson }}
{%- for vm in claw.clients.vms %}

qubes-claw-client-{{ vm }}:
  qvm.tags:
    - name: {{ vm }}
    - add: [{{ claw.clients.tag }}]
{%- endfor %}

qubes-claw-policy:
  file.managed:
    - name: {{ claw.policy.file }}
    - user: root
    - group: qubes
    - mode: '0664'
    - makedirs: True
    - contents: |
        # Written by qubes-claw-install from its answers; `qubes-claw-install uninstall`
        # removes it. Change the answers and run the installer again instead of editing.
{%- for p in claw.ports %}
        {{ claw.policy.service }} +{{ p }} @tag:{{ claw.clients.tag }} @tag:{{ a.tag }} allow
{%- endfor %}
        {{ claw.policy.service }} * @anyvm @anyvm deny
{%- if r.enabled %}
{%- if r.vm == a.name %}
{{ raise('qubes-claw: authorizing the agent VM for qvm-remote needs restricted mode, which this formula does not write: use qubes-claw-install') }}
{%- endif %}
{%- if r.create %}

qubes-claw-admin-vm:
  qvm.vm:
    - name: {{ r.vm }}
    - actions: [present, prefs]
    - present:
      - class: AppVM
      - template: {{ r.template or a.template }}
      - label: {{ r.label }}
    - prefs:
      - label: {{ r.label }}
      - netvm: ''
{%- endif %}

{#- Pull model: the key is made in the VM; dom0 reads it over qvm-run --pass-io. #}
qubes-claw-remote-key:
  cmd.run:
    - name: >-
        qvm-run --pass-io --no-gui {{ r.vm }} 'qvm-remote key show >/dev/null 2>&1 || qvm-remote key gen >/dev/null'
        && qvm-remote-dom0 authorize {{ r.vm }}
    - unless: test -s {{ r.key_dir }}/{{ r.vm }}.key
{%- if r.create %}
    - require:
      - qvm: qubes-claw-admin-vm
{%- endif %}
{%- if r.persistent_enable is string and r.persistent_enable == 'yes' %}

qubes-claw-remote-daemon:
  service.running:
    - name: {{ r.unit }}
    - enable: True
    - require:
      - cmd: qubes-claw-remote-key
{%- endif %}
{%- endif %}
{%- endif %}
