{#- qubes-claw inside the agent VM (qubesctl runs it there over salt-ssh, as
    root): the same VM side as qubes-claw-install — the qrexec handler's
    allow-list in the user's home, and qubes-claw-proxy setup (proxy config,
    OpenClaw config, user units gated on the service flags, linger where it
    persists). Apply with:
      sudo qubesctl --skip-dom0 --targets=claw-agent state.apply qubes-claw.vm #}
{%- from "qubes-claw/map.jinja" import claw with context %}
{%- if grains['id'] != 'dom0' and claw.setup.enabled %}
{%- set s = claw.setup %}
{%- set ports = claw.ports %}
{%- if claw.agent.class == 'StandaloneVM' %}

{#- A StandaloneVM has no template: the package goes into the VM itself. #}
qubes-claw-vm-package:
  pkg.installed:
    - name: qubes-claw-vm
{%- endif %}

qubes-claw-connect-ports:
  file.managed:
    - name: /home/user/.config/qubes-claw/qubes-claw-connect.yaml
    - user: user
    - group: user
    - mode: '0644'
    - makedirs: True
    - contents: |
        # Written from the qubes-claw deployment answers (qubes-claw-install, or the
        # qubes-claw Salt formula); change the answers and apply them again instead of
        # editing this file.
        ports: [{{ ports|join(', ') }}]

{%- set cmd %}
{%- if ports|length > 1 %}QCPROXY_SETUP_GATEWAY_PORT={{ ports[1] }} QCPROXY_SETUP_GATEWAY_HEALTH=http://127.0.0.1:{{ ports[1] }}/ {% endif -%}
qubes-claw-proxy setup --listen 127.0.0.1:{{ ports[0] }}
{%- if s.provider %} --provider {{ s.provider }}{% endif %}
{%- if s.base_url %} --base-url '{{ s.base_url }}'{% endif %}
{%- if s.api_key %} --api-key-stdin{% endif %}
{%- endset %}

qubes-claw-proxy-setup:
  cmd.run:
    - name: {{ cmd|tojson }}
{%- if s.api_key %}
    - stdin: {{ s.api_key|tojson }}
{%- endif %}
    {#- setup --check prints "would ..." for each change: none, nothing to do. #}
    - unless: {{ ("! " ~ cmd ~ " --check | grep -q '^would '")|tojson }}
    - require:
      - file: qubes-claw-connect-ports
{%- if claw.agent.class == 'StandaloneVM' %}
      - pkg: qubes-claw-vm-package
{%- endif %}
{%- endif %}
