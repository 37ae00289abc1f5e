# Install layout, the Debian package and the RPM, from one description.
#
#   cmake --install build [--prefix P]      binary, systemd unit, policy, docs, man page
#   cpack --config build/CPackConfig.cmake  build/xdpguard_<version>_<arch>.deb and
#                                           build/xdpguard-<version>-<release>.<arch>.rpm
#
# The version is the project's (CMakeLists.txt); the changelog is
# deploy/changelog (RPM's %changelog form, also installed as a doc in both
# packages), whose newest entry must name that version: configuring checks it.
#
# A system daemon installs into the system: the prefix defaults to /usr, not
# /usr/local, so that the unit's ExecStart, the package and a plain install
# agree. The policy is a configuration file and always goes to /etc/xdpguard,
# whatever the prefix (DESTDIR still applies).

# Installing and packaging take what was built (`cmake --build` first); they
# do not build the whole tree (tests, benchmarks) on their own: cpack's
# "preinstall" step would otherwise rebuild everything.
set(CMAKE_SKIP_INSTALL_ALL_DEPENDENCY ON)

if(CMAKE_INSTALL_PREFIX_INITIALIZED_TO_DEFAULT)
  set(CMAKE_INSTALL_PREFIX /usr CACHE PATH "Install prefix" FORCE)
endif()
include(GNUInstallDirs)

set(XDPGUARD_DEPLOY_DIR ${PROJECT_SOURCE_DIR}/deploy)
set(XDPGUARD_CONF_DIR /etc/xdpguard)

# The unit names the binary by its absolute path; the source copy says
# /usr/sbin, rewritten here for another prefix.
set(unit_src ${XDPGUARD_DEPLOY_DIR}/xdpguard@.service)
set(unit_out ${PROJECT_BINARY_DIR}/deploy/xdpguard@.service)
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${unit_src})
file(READ ${unit_src} unit_text)
string(REPLACE "/usr/sbin/xdpguard" "${CMAKE_INSTALL_FULL_SBINDIR}/xdpguard" unit_text "${unit_text}")
file(CONFIGURE OUTPUT ${unit_out} CONTENT "${unit_text}" @ONLY)

# systemd looks in <prefix>/lib/systemd/system for /usr and /usr/local.
# Relative to the prefix: CPack's RPM marks absolute destinations %config.
install(FILES ${unit_out} DESTINATION lib/systemd/system)
install(FILES ${PROJECT_SOURCE_DIR}/policy/ovoc-single-node.yaml
        DESTINATION ${XDPGUARD_CONF_DIR} RENAME policy.yaml
        PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
file(GLOB doc_files CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/docs/*.md)
set(changelog ${XDPGUARD_DEPLOY_DIR}/changelog)
# The policy's JSON Schema beside its format, for editors (docs/policy-format.md).
install(FILES ${PROJECT_SOURCE_DIR}/README.md ${doc_files} ${changelog}
        ${PROJECT_SOURCE_DIR}/policy/xdpguard-policy.schema.json
        DESTINATION ${CMAKE_INSTALL_DOCDIR})
# Man pages go compressed, as both Debian and the RHEL family ship them;
# compressed here, both packages get the same file (the RPM CPack builds
# carried it uncompressed). -n: no name or time stamp inside, so the
# packages are reproducible.
set(man_src ${XDPGUARD_DEPLOY_DIR}/xdpguard.8)
set(man_gz ${PROJECT_BINARY_DIR}/deploy/xdpguard.8.gz)
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${man_src})
execute_process(COMMAND gzip -9nc ${man_src} OUTPUT_FILE ${man_gz} RESULT_VARIABLE gzip_rc)
if(NOT gzip_rc EQUAL 0)
  message(FATAL_ERROR "gzip ${man_src} failed: ${gzip_rc}")
endif()
install(FILES ${man_gz} DESTINATION ${CMAKE_INSTALL_MANDIR}/man8)

# --- the package scripts ---------------------------------------------------
# deploy/package-actions.sh says what the scripts do; each format's scripts
# (deploy/debian/{postinst,prerm,postrm}, deploy/rpm/{post,preun,postun})
# say when, and get the actions pasted in.
set(actions_src ${XDPGUARD_DEPLOY_DIR}/package-actions.sh)
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${actions_src})
file(READ ${actions_src} XDPGUARD_PACKAGE_ACTIONS)
foreach(script debian/postinst debian/prerm debian/postrm rpm/post rpm/preun rpm/postun)
  configure_file(${XDPGUARD_DEPLOY_DIR}/${script} ${PROJECT_BINARY_DIR}/deploy/${script} @ONLY
                 FILE_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ
                                  GROUP_EXECUTE WORLD_READ WORLD_EXECUTE)
endforeach()
set(scripts_dir ${PROJECT_BINARY_DIR}/deploy)

# --- the changelog names this version --------------------------------------
set(XDPGUARD_RPM_RELEASE 1)
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${changelog})
file(STRINGS ${changelog} newest REGEX "^\\* " LIMIT_COUNT 1)
if(NOT newest MATCHES " - ${PROJECT_VERSION}-${XDPGUARD_RPM_RELEASE}$")
  message(FATAL_ERROR "deploy/changelog: the newest entry ('${newest}') is not for "
                      "${PROJECT_VERSION}-${XDPGUARD_RPM_RELEASE}: add one for this version")
endif()

# --- CPack: one .deb and one RPM ---------------------------------------------
# The RPM needs rpmbuild (Debian's package `rpm`); without it only the .deb.
find_program(XDPGUARD_RPMBUILD rpmbuild)
if(XDPGUARD_RPMBUILD)
  set(CPACK_GENERATOR DEB RPM)
else()
  set(CPACK_GENERATOR DEB)
endif()
set(CPACK_PACKAGE_NAME xdpguard)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "xdpguard maintainers <xdpguard@localhost>")
set(CPACK_PACKAGE_VENDOR "xdpguard maintainers")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "XDP/eBPF host firewall agent for AudioCodes OVOC servers")
set(CPACK_PACKAGE_DESCRIPTION
    "xdpguard makes a host permit exactly the ports and directions its policy\n\
documents and nothing else: an XDP program classifies inbound packets, a TC\n\
egress program tracks the flows the host opens, and per-rule counters show\n\
what was passed and dropped. Ships the OVOC single-node policy as\n\
/etc/xdpguard/policy.yaml and a systemd unit, xdpguard@<interface>.service.")
set(CPACK_PACKAGING_INSTALL_PREFIX ${CMAKE_INSTALL_PREFIX})
# Not relocatable: the unit names the binary by its absolute path, and the
# policy lives in /etc whatever the prefix.
set(CPACK_PACKAGE_RELOCATABLE OFF)
set(CPACK_PACKAGE_DIRECTORY ${PROJECT_BINARY_DIR})
set(CPACK_STRIP_FILES ON)

# .deb
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# /bin/kill, which the unit's ExecReload runs.
set(CPACK_DEBIAN_PACKAGE_DEPENDS procps)
if(XDPGUARD_STATIC)
  # A static binary needs no library package; dpkg-shlibdeps would only
  # warn that it found none.
  set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS OFF)
else()
  # Depends from the binary's actual shared libraries (dpkg-shlibdeps, from
  # dpkg-dev): libbpf1, libyaml-cpp0.7, libfmt9, libelf1, zlib1g, libc6, ...
  set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
endif()
# The policy is a conffile: dpkg keeps an operator's edits across upgrades and
# removal.
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${XDPGUARD_DEPLOY_DIR}/debian/conffiles
    ${scripts_dir}/debian/postinst
    ${scripts_dir}/debian/prerm
    ${scripts_dir}/debian/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)

# RPM: the same files. Requires are rpmbuild's own from the binary (none for
# the static one; the shared libraries otherwise) plus util-linux, which owns
# /usr/bin/kill on the RHEL family.
set(CPACK_RPM_FILE_NAME RPM-DEFAULT)
set(CPACK_RPM_PACKAGE_RELEASE ${XDPGUARD_RPM_RELEASE})
# The project has not declared a licence for the agent (only the BPF sources
# carry an SPDX line, GPL-2.0-only OR BSD-2-Clause); the tag says so until it
# does, rather than guess.
set(CPACK_RPM_PACKAGE_LICENSE LicenseRef-Undeclared)
set(CPACK_RPM_PACKAGE_GROUP "System Environment/Daemons")
set(CPACK_RPM_PACKAGE_REQUIRES util-linux)
set(CPACK_RPM_PACKAGE_DESCRIPTION ${CPACK_PACKAGE_DESCRIPTION})
set(CPACK_RPM_CHANGELOG_FILE ${changelog})
# Packager: the same contact as the .deb's Maintainer. No /usr/lib/.build-id
# links: they serve debuginfo packages, and there are none.
set(CPACK_RPM_SPEC_MORE_DEFINE
    "%define packager ${CPACK_PACKAGE_CONTACT}\n%define _build_id_links none")
# The policy is the RPM's %config(noreplace): an edited copy stays and the
# packaged one lands beside it as policy.yaml.rpmnew.
set(CPACK_RPM_USER_FILELIST "%config(noreplace) ${XDPGUARD_CONF_DIR}/policy.yaml")
# Own only our directories, not the system's (rpmlint: a package must not
# own /usr/sbin or the man section).
set(CPACK_RPM_EXCLUDE_FROM_AUTO_FILELIST_ADDITION
    /usr/sbin /usr/lib/systemd /usr/lib/systemd/system /usr/share/man /usr/share/man/man8)
set(CPACK_RPM_POST_INSTALL_SCRIPT_FILE ${scripts_dir}/rpm/post)
set(CPACK_RPM_PRE_UNINSTALL_SCRIPT_FILE ${scripts_dir}/rpm/preun)
set(CPACK_RPM_POST_UNINSTALL_SCRIPT_FILE ${scripts_dir}/rpm/postun)
include(CPack)
