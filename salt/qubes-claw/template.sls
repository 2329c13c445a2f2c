{#- qubes-claw in the agent VM's template, for an AppVM agent: the package
    (qrexec handler, proxy, user units) must live in the template, since an
    AppVM's root is reset at every boot. Apply with:
      sudo qubesctl --skip-dom0 --targets=TEMPLATE state.apply qubes-claw.template #}
{%- from "qubes-claw/map.jinja" import claw with context %}
{%- if grains['id'] != 'dom0' %}

qubes-claw-vm-package:
  pkg.installed:
    - name: qubes-claw-vm
{%- endif %}
